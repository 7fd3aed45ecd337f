"""Periodic duties inside the workers, one at a time under a Redis lock: the reconciler.

Each tick it republishes retries that are due (single lane first), ends waiting jobs past their
deadline, republishes jobs whose lease expired because their worker died and queued jobs whose
broker message is evidently lost, publishes scheduled jobs that are due (and bulk jobs the quiet
hours held, once they end), sweeps records whose retention ended, and logs the budget's warnings once
each. Every step is bounded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import redis
import structlog

from ledger.budget import to_usd
from ledger.outbox import republish
from ledger.schema import CLAIM_STEP, RELEASE_STEP, STEP, SWEEP_STEP
from worker.context import WorkerContext

log = structlog.get_logger("cosmos.reconciler")

LOCK = "reconciler"
MAX_STEPS_PER_TICK = 40
"""Claim steps per tick while a full step comes back: resuming a paused backlog releases up to
40 × CLAIM_STEP jobs a tick, each step a short script call with Redis free between them."""
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
        self.catching_up = False
        """Redis restarted: republish every queued job until a claim finds no more."""
        self.last_ran_ts = 0.0
        """When this process last ran the duties (held the lock), epoch seconds; 0 before."""

    def run(self) -> None:
        interval = self.ctx.settings.reconciler_interval_s
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
        ttl_ms = int(max(5.0, ctx.settings.reconciler_interval_s * 5) * 1000)
        if not ctx.ledger.take_lock(LOCK, self.token, ttl_ms):
            return 0
        try:
            reasons: Counter[str] = Counter()
            self.catching_up = self.catching_up or self._redis_restarted()
            for _ in range(MAX_STEPS_PER_TICK):
                picked, more_expired = ctx.ledger.claim(CLAIM_STEP, restarted=self.catching_up)
                republish(
                    ctx.redis,
                    ctx.keys,
                    ((job_id, lane) for job_id, lane, _ in picked),
                    chunk_size=ctx.settings.bulk_chunk_size,
                )
                reasons.update(why for _, _, why in picked)
                if len(picked) < CLAIM_STEP and not more_expired:
                    self.catching_up = False  # every queued job's message is out again
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
            self.last_ran_ts = time.time()
            if reasons or swept:
                log.info("reconciled", swept=swept, **reasons)
            if ctx.ledger.budget.capped:
                announce_budget(ctx)
            return sum(reasons.values())
        finally:
            ctx.ledger.release_lock(LOCK, self.token)

    def _redis_restarted(self) -> bool:
        """Whether Redis has a new run_id since the reconciler last looked (remembered in Redis itself,
        so a worker restarted with it still notices). Messages taken but not acked, or written after
        the last fsync, are gone after a restart; they must not wait for the lost-message grace."""
        run_id = str(self.ctx.redis.info("server")["run_id"])
        seen = self.ctx.redis.set(self.ctx.keys.redis_run_id, run_id, get=True)
        return seen is not None and seen != run_id  # a first look is not a restart

    def stop(self) -> None:
        self.stopping.set()


def announce_budget(ctx: WorkerContext) -> None:
    """The log line of each budget warning level reached today, once a day across the fleet."""
    budget = ctx.ledger.budget
    for level, reason, messages, price in ctx.ledger.budget_announcements():
        figures = dict(level=level, reason=reason, messages=messages, price=to_usd(price), tz=budget.zone.key)
        if level >= 100:
            log.error(
                f"daily cap reached ({reason}): all sending paused until the next budget day, or "
                "`cosmos-sms resume --budget` for the rest of today",
                **figures,
            )
        else:
            log.warning(f"budget at {level} % of the daily cap ({reason})", **figures)
