"""The benchmark's own processes: a private redis-server, the sandbox, workers; each in its own group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll `condition` until truthy; RuntimeError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Service:
    """A process group we started: its leader, its log file, and how to stop it."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> bool:
        """True while the process runs; once it has exited, raise with the end of its log."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        return True

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole group (graceful worker shutdown), SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass


def spawn(name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> Service:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        # start_new_session: one process group per service, so stopping it reaches its children.
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Service(name, proc, log_path)


def cosmos_cmd(*args: str) -> list[str]:
    """The project's CLI (`cosmos-sms ...`) run by this interpreter."""
    return [sys.executable, "-m", "cli.main", *args]


def start_redis(work_dir: Path, name: str = "redis", *extra: str) -> tuple[Service, str]:
    """A private redis-server on a free port, no persistence unless `extra` says; returns it and its URL."""
    binary = shutil.which("redis-server") or str(Path(sys.executable).with_name("redis-server"))
    port = free_port()
    data = work_dir / name
    data.mkdir(parents=True, exist_ok=True)
    service = spawn(
        name,
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            *extra,
        ],
        dict(os.environ),
        work_dir,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)

    def pings() -> bool:
        service.check_alive()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_for(pings, 10, "the private redis-server to answer")
    return service, f"redis://127.0.0.1:{port}/0"


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (those alive now)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process tree so far (reaped children included)."""
    total = 0.0
    for proc in tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


class RssSampler(threading.Thread):
    """Samples the RSS of every process in some trees every `interval_s`; keeps the peak per process."""

    def __init__(self, pids: list[int], interval_s: float = 0.5):
        super().__init__(name="rss-sampler", daemon=True)
        self.pids = pids
        self.interval_s = interval_s
        self.peak_bytes: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(self.interval_s):
                return

    def sample(self) -> None:
        for pid in self.pids:
            for proc in tree(pid):
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak_bytes[proc.pid] = max(rss, self.peak_bytes.get(proc.pid, 0))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.sample()

    @property
    def peak_mb(self) -> float:
        return max(self.peak_bytes.values(), default=0) / 2**20
