"""Receiver fixtures: a real `cosmos-sms webhook` process on a free port, wired to the test's Redis."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import cosmos_cmd, spawn, stop

TEST_WEBHOOK_SECRET = "test-webhook-secret-5b1c0e7d2a"


class ReceiverHandle:
    """A running receiver: `.url` (its /delivery-status), `.port`, `.env` (webhook variables workers need)."""

    def __init__(self, port: int, proc: subprocess.Popen, log_path: Path, env: dict[str, str]) -> None:
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/delivery-status"
        self.env = env

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _started(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"receiver exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture
def receiver_factory(pipeline_env, tmp_path):
    """Start receivers with env overrides (e.g. another secret); all are stopped at teardown."""
    started: list[ReceiverHandle] = []

    def start(**env_overrides: str) -> ReceiverHandle:
        port = free_port()
        webhook_env = {
            "COSMOS_WEBHOOK_URL": f"http://127.0.0.1:{port}/delivery-status",
            "COSMOS_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            **env_overrides,
        }
        log_path = tmp_path / f"receiver-{port}.log"
        proc = spawn(cosmos_cmd("webhook", "--port", str(port)), {**pipeline_env, **webhook_env}, log_path)
        handle = ReceiverHandle(port, proc, log_path, webhook_env)
        started.append(handle)
        wait_for(handle._started, timeout=30, what=f"receiver on port {port} to answer /healthz")
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def receiver(receiver_factory) -> ReceiverHandle:
    """A receiver with the test webhook secret and default limits."""
    return receiver_factory()


@pytest.fixture
def receipt_env(receiver) -> dict[str, str]:
    """What workers need to sign callbacks to `receiver`: `workers.start(**receipt_env)`."""
    return receiver.env
