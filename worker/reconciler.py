"""Periodic duties inside the workers, one at a time under a Redis lock: the reconciler.

Each tick it republishes retries that are due (single lane first), ends waiting jobs past their
deadline, republishes jobs whose lease expired because their worker died and queued jobs whose
broker message is evidently lost, publishes scheduled jobs that are due (and bulk jobs the quiet
hours held, once they end), and sweeps records whose retention ended. Every step is bounded.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import redis
import structlog

from ledger.outbox import republish
from ledger.schema import RELEASE_STEP, STEP, SWEEP_STEP
from worker.context import WorkerContext

log = structlog.get_logger("cosmos.reconciler")

LOCK = "reconciler"
MAX_STEPS_PER_TICK = 10
"""Claim steps per tick while a full step comes back: resuming a paused backlog releases up to
10 × STEP jobs a tick, each step a short script call."""
MAX_RELEASE_STEPS_PER_TICK = 100
"""Release steps per tick while a full step comes back: up to 100 × RELEASE_STEP scheduled jobs a
tick, faster than any send rate, each step a short script call."""


class Reconciler(threading.Thread):
    """A daemon thread per worker process; the lock makes one of them act per tick."""

    def __init__(self, ctx: WorkerContext):
        super().__init__(name="cosmos-reconciler", daemon=True)
        self.ctx = ctx
        self.token = uuid.uuid4().hex
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = self.ctx.settings.scheduler_interval_s
        while not self.stopping.wait(interval):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("reconciler tick failed; Redis unreachable", error=str(exc))
            except Exception:
                log.exception("reconciler tick failed")

    def tick(self) -> int:
        """Run the duties if this process holds the lock; returns jobs republished."""
        ctx = self.ctx
        ttl_ms = int(max(5.0, ctx.settings.scheduler_interval_s * 5) * 1000)
        if not ctx.ledger.take_lock(LOCK, self.token, ttl_ms):
            return 0
        try:
            reasons: Counter[str] = Counter()
            for _ in range(MAX_STEPS_PER_TICK):
                picked = ctx.ledger.claim_due(STEP)
                republish(
                    ctx.redis,
                    ctx.keys,
                    ((job_id, lane) for job_id, lane, _ in picked),
                    chunk_size=ctx.settings.bulk_chunk_size,
                )
                reasons.update(why for _, _, why in picked)
                if len(picked) < STEP:
                    break
            for _ in range(MAX_RELEASE_STEPS_PER_TICK):
                released = ctx.ledger.release_due(RELEASE_STEP)
                republish(
                    ctx.redis,
                    ctx.keys,
                    ((job_id, lane) for job_id, lane, _ in released),
                    chunk_size=ctx.settings.bulk_chunk_size,
                )
                reasons.update(why for _, _, why in released)
                if len(released) < RELEASE_STEP:
                    break
            swept = 0
            for _ in range(STEP // SWEEP_STEP):  # up to STEP records a tick, in short calls
                step = ctx.ledger.sweep(SWEEP_STEP)
                swept += step
                if step < SWEEP_STEP:
                    break
            if reasons or swept:
                log.info("reconciled", swept=swept, **reasons)
            return sum(reasons.values())
        finally:
            ctx.ledger.release_lock(LOCK, self.token)

    def stop(self) -> None:
        self.stopping.set()
