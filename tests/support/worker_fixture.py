"""Real Celery worker processes for the tests that kill one or read its log, and a producer bound to the same Redis.

Tests that kill nothing use the in-process worker (`workers`, tests/support/inprocess_worker.py).
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.worker_command import celery_worker_argv
from config.keys import Keys
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.processes import cosmos_cmd, spawn, stop


@dataclass
class WorkerHandle:
    proc: subprocess.Popen
    log_path: Path
    name: str

    def kill(self) -> None:
        stop(self.proc, signal.SIGKILL)

    def terminate(self, timeout: float = 30) -> None:
        stop(self.proc, signal.SIGTERM, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class WorkerPool:
    env: dict
    tmp_path: Path
    started: list = field(default_factory=list)

    def start(self, concurrency: int = 8, lane: str | None = None, **env_overrides: str) -> WorkerHandle:
        """A `celery -A worker worker` process, consuming both lanes or only `lane`."""
        name = f"w{len(self.started)}"
        env = {**self.env, **env_overrides}
        queue = Keys(env["COSMOS_REDIS_PREFIX"]).queue(lane) if lane else None
        cmd = celery_worker_argv(f"{name}@%h", concurrency, "INFO", queue)
        return self._launch(name, cmd, env, processes=1)

    def start_supervised(self, concurrency: int = 8, **env_overrides: str) -> WorkerHandle:
        """`cosmos-sms worker` as a user runs it: a process per lane, restarted if one dies on its own."""
        cmd = cosmos_cmd("worker", "--processes", "1", "--single-processes", "1", "--concurrency", str(concurrency))
        return self._launch(f"s{len(self.started)}", cmd, {**self.env, **env_overrides}, processes=2)

    def _launch(self, name: str, cmd: list[str], env: dict, processes: int) -> WorkerHandle:
        """Start `cmd` and wait until its `processes` Celery workers logged `ready`."""
        log_path = self.tmp_path / f"worker-{name}.log"
        handle = WorkerHandle(spawn(cmd, env, log_path), log_path, name)
        self.started.append(handle)
        wait_for(
            lambda: handle.log().count(" ready") >= processes or handle.proc.poll() is not None,
            timeout=30,
            what=f"worker {name} to be ready",
        )
        assert handle.proc.poll() is None, handle.log()[-3000:]
        return handle

    def stop_all(self) -> None:
        """At teardown the test's outcome is decided: SIGKILL, not a warm shutdown that costs seconds a worker.
        (Tests of a graceful stop call `terminate()` themselves.)"""
        for handle in self.started:
            stop(handle.proc, signal.SIGKILL)


@pytest.fixture
def pipeline_env(base_env, sandbox) -> dict:
    """Environment of a pipeline wired to the test's sandbox."""
    return {**base_env, "COSMOS_API_URL": sandbox.api_url}


@pytest.fixture
def worker_processes(pipeline_env, tmp_path):
    pool = WorkerPool(pipeline_env, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def producer(settings_for, sandbox) -> SmsProducer:
    return SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url))
