"""Sandbox fixtures: a real `cosmos-sms sandbox` process on a free port, with a handle to steer and inspect it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sandbox.control import SandboxControl
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import cosmos_cmd, spawn, stop


class SandboxHandle(SandboxControl):
    """A running sandbox process: `.port`, `.api_url` (the COSMOS_API_URL), `.log_path`, and the control calls."""

    def __init__(self, port: int, proc: subprocess.Popen, log_path: Path) -> None:
        super().__init__(f"http://127.0.0.1:{port}")
        self.port = port
        self.proc = proc
        self.log_path = log_path

    @property
    def sms_url(self) -> str:
        """The send endpoint itself: {COSMOS_API_URL}/sms/."""
        return f"{self.api_url}/sms/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _started(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"sandbox exited with {self.proc.returncode}:\n{self.log()}")
        return self.answers()

    def stop(self) -> None:
        self.close()
        stop(self.proc)


@pytest.fixture
def sandbox_factory(base_env, tmp_path):
    """Start sandboxes with extra CLI args (and env overrides); all are stopped at teardown."""
    started: list[SandboxHandle] = []

    def start(*args: str, env: dict[str, str] | None = None) -> SandboxHandle:
        port = free_port()
        log_path = tmp_path / f"sandbox-{port}.log"
        proc = spawn(cosmos_cmd("sandbox", "--port", str(port), *args), {**base_env, **(env or {})}, log_path)
        handle = SandboxHandle(port, proc, log_path)
        started.append(handle)
        wait_for(handle._started, timeout=20, what=f"sandbox on port {port} to answer")
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def sandbox(sandbox_factory) -> SandboxHandle:
    """A fresh sandbox with default settings and the test credentials of `base_env`."""
    return sandbox_factory()
