"""Periodic duties inside the workers, one at a time under a Redis lock: the reconciler.

From the ledger alone it republishes retries that are due, `queued` jobs whose first
publish may be lost, and jobs whose lease expired because their worker died.
"""

from __future__ import annotations

import threading
import uuid

import redis
import structlog
from ledger.outbox import republish
from worker.context import WorkerContext

log = structlog.get_logger("cosmos.scheduler")

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Scheduler(threading.Thread):
    """A daemon thread per worker process; the lock makes one of them act per tick."""

    def __init__(self, ctx: WorkerContext):
        super().__init__(name="cosmos-scheduler", daemon=True)
        self.ctx = ctx
        self.token = uuid.uuid4().hex
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = self.ctx.settings.scheduler_interval_s
        while not self.stopping.wait(interval):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("scheduler tick failed; Redis unreachable", error=str(exc))
            except Exception:
                log.exception("scheduler tick failed")

    def tick(self) -> int:
        """Run the duties if this process holds the lock; returns jobs republished."""
        ctx = self.ctx
        lock = ctx.keys.lock("scheduler")
        ttl_ms = int(max(5.0, ctx.settings.scheduler_interval_s * 5) * 1000)
        if not ctx.redis.set(lock, self.token, nx=True, px=ttl_ms):
            return 0
        try:
            picked = ctx.ledger.claim_due()
            republish(ctx.redis, ctx.keys, ((job_id, lane) for job_id, lane, _ in picked))
            if picked:
                reasons = {}
                for _, _, why in picked:
                    reasons[why] = reasons.get(why, 0) + 1
                log.info("republished jobs", **reasons)
            return len(picked)
        finally:
            ctx.redis.eval(_RELEASE, 1, lock, self.token)

    def stop(self) -> None:
        self.stopping.set()
