"""The worker process's heartbeat: who it is and how busy, every COSMOS_HEARTBEAT_S, for the
console's Processes page, `cosmos-sms processes` and /metrics."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import structlog

from config.version import package_version
from ledger.processes import Heartbeats
from ledger.record import iso
from worker.context import WorkerContext

log = structlog.get_logger("cosmos.heartbeat")


class TaskGauge:
    """Celery task threads running a task now (the threads pool has no public count of its own)."""

    def __init__(self) -> None:
        self.running = 0
        self._lock = threading.Lock()

    def started(self, **_: Any) -> None:
        with self._lock:
            self.running += 1

    def ended(self, **_: Any) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)


class Heartbeat(threading.Thread):
    """A daemon thread per worker process; `describe` says what the process is doing now."""

    def __init__(self, ctx: WorkerContext, lanes: list[str], tasks: TaskGauge, last_reconciled: Callable[[], float]):
        super().__init__(name="cosmos-heartbeat", daemon=True)
        self.ctx = ctx
        self.lanes = lanes
        self.tasks = tasks
        self.last_reconciled = last_reconciled
        self.process_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_ts = time.time()
        self.beats = Heartbeats(ctx.redis, ctx.keys)
        self.stopping = threading.Event()

    def describe(self) -> dict[str, Any]:
        s, slots = self.ctx.settings, self.ctx.send_slots
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "lanes": self.lanes,
            "threads_busy": self.tasks.running,
            "threads_total": s.worker_concurrency,
            "send_threads_busy": slots.capacity - slots.free,
            "send_threads_total": slots.capacity,
            "binds": 0,
            "version": package_version(),
            "started_at": iso(self.started_ts),
            "last_reconciler_run": iso(self.last_reconciled() or None),
        }

    def beat(self) -> None:
        self.beats.beat(self.process_id, self.describe(), self.ctx.settings.heartbeat_s)

    def run(self) -> None:
        interval = self.ctx.settings.heartbeat_s
        while True:
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat not written; Redis unreachable", error=str(exc))
            if self.stopping.wait(interval):
                return

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.beats.leave(self.process_id)
        except redis.RedisError:
            pass  # it will show as lost, then be forgotten
