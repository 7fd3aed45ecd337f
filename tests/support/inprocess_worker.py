"""A real Celery worker inside the pytest process: the same app, tasks, reconciler and forwarder, in threads.

Starting one costs ~0.1 s where a `celery worker` process costs seconds of imports and start-up, so
pipeline tests that kill nothing use it (`workers`). Tests that kill a worker, read its log or need
the CLI's supervision use real processes (`worker_processes`, tests/support/worker_fixture.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import TestWorkController
from celery.worker import state as worker_state

from config.keys import Keys
from config.settings import Settings
from tests.support.polling import wait_for
from worker.context import get_context, reset_context
from worker.factory import WorkerDuties, create_app

STOP_TIMEOUT_S = 30.0
"""Longest a stopping worker may take to finish its running tasks (each bounded by the COSMOS timeouts)."""


@dataclass
class InProcessWorker:
    """One worker of the pytest process: Celery's consumer in a thread, with the worker's own duties."""

    settings: Settings
    app: Celery
    controller: TestWorkController
    thread: threading.Thread
    duties: WorkerDuties

    def stop(self) -> None:
        signals.task_prerun.disconnect(self.duties.tasks.started)
        signals.task_postrun.disconnect(self.duties.tasks.ended)
        self.duties.stop()
        worker_state.should_terminate = 0  # Celery's own "warm shutdown": running tasks finish first
        self.thread.join(STOP_TIMEOUT_S)
        worker_state.should_terminate = None
        assert not self.thread.is_alive(), "the in-process worker did not stop in time"
        ctx = get_context(self.settings)
        if "send_pool" in ctx.__dict__:
            ctx.send_pool.shutdown(wait=True)
        ctx.redis.connection_pool.disconnect()
        reset_context()


@dataclass
class InProcessWorkers:
    """`start()` like WorkerPool's, one worker at a time (the worker context is one per process)."""

    env: dict
    running: list[InProcessWorker] = field(default_factory=list)

    def start(self, concurrency: int = 8, lane: str | None = None, **env_overrides: str) -> InProcessWorker:
        assert not self.running, (
            "one in-process worker at a time (one worker context per process): use worker_processes"
        )
        env = {**self.env, **env_overrides, "COSMOS_WORKER_CONCURRENCY": str(concurrency)}
        settings = Settings(
            _env_file=None, **{k: v for k, v in env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"}
        )
        app = create_app(settings, lifecycle=False)
        # BRPOP returns every 0.1 s instead of 1 s, so the consumer sees a stop at once (~1 s saved a test).
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.1}
        duties = WorkerDuties(app, settings)
        duties.check_start()
        # Celery's own logging set-up is skipped: the pytest process keeps its logging as it is.
        app.finalize()
        app.set_current()
        app.set_default()  # the pool threads find the tasks through the default app
        queues = [Keys(settings.redis_prefix).queue(lane)] if lane else None
        controller = TestWorkController(
            app=app,
            concurrency=concurrency,
            pool="threads",
            queues=queues,
            hostname=f"inproc-{settings.redis_prefix}@localhost",
            loglevel="WARNING",
            logfile=None,
            ready_callback=None,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        thread = threading.Thread(target=controller.start, name="inproc-celery-worker", daemon=True)
        thread.start()
        wait_for(lambda: controller._on_started.is_set() or not thread.is_alive(), timeout=30, what="worker ready")
        assert thread.is_alive(), "the in-process worker stopped while starting"
        duties.start()
        signals.task_prerun.connect(duties.tasks.started, weak=False)
        signals.task_postrun.connect(duties.tasks.ended, weak=False)
        worker = InProcessWorker(settings, app, controller, thread, duties)
        self.running.append(worker)
        return worker

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()


@pytest.fixture
def workers(pipeline_env):
    """Workers in this process, wired to the test's Redis prefix and sandbox."""
    pool = InProcessWorkers(pipeline_env)
    yield pool
    pool.stop_all()
