"""pytest fixtures for testing an application against a real sandbox process (docs/sandbox.md, "In tests").

Installed as a pytest plugin (entry point `cosmos_sandbox`), so `pip install cosmos-sms` is all a user needs.
One sandbox process per test module serves the `sandbox` fixture and is reset between tests, which is
much cheaper than a process per test. Nothing runs at import.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path

import pytest

from sandbox.control import SandboxControl
from sandbox.faults import FaultSettings

START_TIMEOUT_S = 20.0
"""Seconds a sandbox may take to answer its control endpoints after it is started."""

STOP_TIMEOUT_S = 10.0
"""Seconds a sandbox may take to exit on SIGTERM before it is killed."""

# `--latency-ms 50` and the like only set a fault knob, which a running sandbox changes at once.
# A window counted from the sandbox's start (`--unauthorized-s`) needs a process of its own.
_FROM_START = frozenset({"unauthorized_s"})
_FAULT_OPTIONS = {f"--{f.name.replace('_', '-')}": f.name for f in fields(FaultSettings) if f.name not in _FROM_START}


class SandboxHandle(SandboxControl):
    """A running sandbox process: `.port`, `.api_url` (the COSMOS_API_URL), `.sms_url`, `.log()`, control calls."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        super().__init__(f"http://127.0.0.1:{port}")
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self._log_start = 0
        self._initial_faults: dict[str, object] = {}
        self._served = False

    @property
    def sms_url(self) -> str:
        """The send endpoint itself: {COSMOS_API_URL}/sms/."""
        return f"{self.api_url}/sms/"

    def log(self) -> str:
        """What the process wrote since it was started, or since the last `restore()`."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_started(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if not self.alive():
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox on port {self.port} did not answer within {timeout}s:\n{self.log()}")
            time.sleep(0.02)  # polling interval
        self._initial_faults = self.faults()
        self._served = False

    def restore(self, **faults: object) -> None:
        """As freshly started (counters, logs, scripts, outage, pending receipts, fault knobs), then `faults`.

        A process no test has used yet is fresh already: resetting it would end a window counted from
        its start (`--unauthorized-s`)."""
        if self._served:
            self.reset()
        self._served = True
        self.set_faults(**{**self._initial_faults, **faults})
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0

    def stop(self) -> None:
        self.close()
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_sandbox(args: tuple[str, ...], env: Mapping[str, str], log_dir: Path) -> SandboxHandle:
    """`cosmos-sms sandbox` on a free loopback port with these CLI args, in its own process group."""
    port = free_port()
    log_path = log_dir / f"sandbox-{port}.log"
    cmd = [sys.executable, "-m", "cli.main", "sandbox", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    handle = SandboxHandle(port, proc, log_path)
    try:
        handle.wait_started()
    except BaseException:
        handle.stop()
        raise
    return handle


def _fault_knobs(args: tuple[str, ...]) -> dict[str, object] | None:
    """The fault settings `args` amount to, or None when they set anything fixed at start (seed, retries...)."""
    if len(args) % 2:
        return None
    defaults = FaultSettings()
    knobs: dict[str, object] = {}
    for option, value in zip(args[::2], args[1::2]):
        if option not in _FAULT_OPTIONS:
            return None
        name = _FAULT_OPTIONS[option]
        try:  # as the CLI parses it: the knob's own type (float, or int for throughput_limit)
            knobs[name] = type(getattr(defaults, name))(value)
        except ValueError:
            return None  # let the real CLI refuse it
    return knobs


class SandboxPool:
    """The sandbox processes of one test module, one per distinct start-up configuration, reused across its tests."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self._idle: dict[tuple[object, ...], list[SandboxHandle]] = {}
        self._busy: list[tuple[tuple[object, ...], SandboxHandle]] = []

    def take(self, args: tuple[str, ...] = (), env: Mapping[str, str] | None = None) -> SandboxHandle:
        """A sandbox as freshly started with `args` and `env` overrides, for this test alone."""
        knobs = _fault_knobs(args) if not env else None
        key: tuple[object, ...] = ("default",) if knobs is not None else (args, tuple(sorted((env or {}).items())))
        idle = self._idle.setdefault(key, [])
        while idle:
            handle = idle.pop()
            if handle.alive():
                break
            handle.stop()
        else:
            handle = start_sandbox(() if knobs is not None else args, {**self.env, **(env or {})}, self.log_dir)
        self._busy.append((key, handle))
        try:
            handle.restore(**(knobs or {}))
        except BaseException:
            handle.stop()
            raise
        return handle

    def give_back(self) -> None:
        """End of a test: its sandboxes wait, idle, for the module's next test."""
        for key, handle in self._busy:
            if handle.alive():
                self._idle.setdefault(key, []).append(handle)
            else:
                handle.stop()
        self._busy.clear()

    def stop_all(self) -> None:
        self.give_back()
        for handles in self._idle.values():
            for handle in handles:
                handle.stop()
        self._idle.clear()


@pytest.fixture(scope="session")
def sandbox_env() -> dict[str, str]:
    """The environment sandbox processes start with; override it to give them credentials
    (COSMOS_SANDBOX_API_KEY / COSMOS_SANDBOX_API_SECRET, else COSMOS_API_KEY / COSMOS_API_SECRET)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def sandbox_pool(sandbox_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxPool]:
    """This module's sandbox processes; all are stopped after its last test."""
    pool = SandboxPool(sandbox_env, tmp_path_factory.mktemp("sandbox"))
    yield pool
    pool.stop_all()


@pytest.fixture
def sandbox_factory(sandbox_pool: SandboxPool) -> Iterator[Callable[..., SandboxHandle]]:
    """`sandbox_factory(*cli_args, env={...})`: a sandbox started with these CLI args and env overrides.

    Fault options (`--latency-ms`, `--price`, ...) are applied to the module's shared process; other
    options and env overrides get a process of their own, kept for the module's later tests."""

    def start(*args: str, env: dict[str, str] | None = None) -> SandboxHandle:
        return sandbox_pool.take(args, env)

    yield start
    sandbox_pool.give_back()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxHandle]) -> SandboxHandle:
    """A sandbox with default settings, as if just started: the module's shared process, reset."""
    return sandbox_factory()
