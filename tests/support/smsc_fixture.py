"""The sandbox's SMSC in its own process, and a fleet of real workers sending over SMPP, per test module."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from producers.producer import SmsProducer
from sandbox.pytest_plugin import SandboxHandle, free_port, start_sandbox
from tests.support.worker_fixture import WorkerPool


class SmscHandle:
    """A sandbox process serving the SMSC: `.smpp_url`, and its control endpoints."""

    def __init__(self, sandbox: SandboxHandle, smpp_port: int):
        self.sandbox = sandbox
        self.smpp_url = f"smpp://127.0.0.1:{smpp_port}"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.sandbox.port}/_sandbox/smpp/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  loopback control endpoint
            return json.loads(answer.read())

    def state(self) -> dict[str, Any]:
        return self._call("state")

    def faults(self, **values: Any) -> None:
        self._call("faults", values)

    def script(self, to: str, *outcomes: str) -> None:
        self._call("script", {"to": to, "outcomes": list(outcomes)})

    def refuse(self, seconds: float) -> None:
        self._call("refuse", {"seconds": seconds})

    def inbound(self, sender: str, to: str, text: str) -> str:
        return self._call("inbound", {"from": sender, "to": to, "text": text})["key"]

    def drop(self) -> int:
        return self._call("drop", {})["dropped"]

    def reset(self) -> None:
        self._call("reset", {})

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.state()["messages"] if to is None or m["to"] == to]


@pytest.fixture(scope="module")
def smsc(sandbox_env, tmp_path_factory) -> Iterator[SmscHandle]:
    smpp_port = free_port()
    handle = start_sandbox(("--smpp-port", str(smpp_port)), sandbox_env, tmp_path_factory.mktemp("smsc"))
    yield SmscHandle(handle, smpp_port)
    handle.stop()


@pytest.fixture(scope="module")
def smpp_env(redis_server, smsc, sandbox_env) -> dict[str, str]:
    """Environment of a fleet sending over the module's SMSC, under a prefix of its own."""
    return {
        **sandbox_env,
        "REDIS_URL": redis_server.url,
        "COSMOS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "COSMOS_TRANSPORT": "smpp",
        "COSMOS_SMPP_URL": smsc.smpp_url,
        "COSMOS_SMPP_SYSTEM_ID": sandbox_env["COSMOS_API_KEY"],
        "COSMOS_SMPP_PASSWORD": sandbox_env["COSMOS_API_SECRET"],
        "COSMOS_SMPP_RESPONSE_TIMEOUT_S": "2",
        "COSMOS_RETRY_BACKOFF_BASE_S": "0.01",
        "COSMOS_RETRY_BACKOFF_MAX_S": "0.05",
        "COSMOS_SCHEDULER_INTERVAL_S": "0.1",
        "COSMOS_PAUSE_PROBE_INTERVAL_S": "1",
        "COSMOS_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }


def settings_of(env: dict[str, str]) -> Settings:
    values: dict[str, object] = {k: v for k, v in env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def smpp_fleet(smpp_env, tmp_path_factory) -> Iterator[WorkerPool]:
    pool = WorkerPool(smpp_env, Path(tmp_path_factory.mktemp("fleet")))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def smpp_producer(smpp_env) -> SmsProducer:
    return SmsProducer(settings_of(smpp_env))
