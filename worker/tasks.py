"""The Celery tasks: named after what they do, carrying job ids only."""

from __future__ import annotations

from concurrent.futures import Future, wait

import structlog
from celery import Celery

from config.celery import TASK_DELIVER, TASK_DELIVER_BATCH
from config.keys import LANE_BULK
from config.settings import Settings
from ledger.outbox import republish
from worker.context import get_context
from worker.delivery import deliver_job, log_verdict, new_owner

log = structlog.get_logger("cosmos.tasks")
SENDABLE = frozenset({"go", "busy"})
"""Verdicts of a chunk's first `begin` that go on to a send thread (`busy`: it waits for a rate slot)."""


def register_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name=TASK_DELIVER, ignore_result=True)
    def deliver(job_id: str) -> None:
        """Send one SMS job (lease, attempts, outcome) — the argument is its job id."""
        deliver_job(get_context(settings), job_id, count_delivery=True)

    @app.task(name=TASK_DELIVER_BATCH, ignore_result=True, bind=True)
    def deliver_batch(task, job_ids: list[str]) -> None:
        """Send a chunk of bulk SMS jobs concurrently, each with its own lease and outcome."""
        ctx = get_context(settings)
        chunk_key = ctx.keys.chunk(task.request.id or ",".join(job_ids[:1]))
        pipe = ctx.redis.pipeline()
        pipe.incr(chunk_key)
        pipe.expire(chunk_key, settings.visibility_timeout_s * 4)
        deliveries = pipe.execute()[0]
        if deliveries > 1:
            # Redelivered: a member may have killed the worker. Split the chunk so only
            # single-job deliveries count towards poison, and neighbours go on.
            log.warning("redelivered chunk split into single jobs", jobs=len(job_ids))
            republish(ctx.redis, ctx.keys, ((job_id, LANE_BULK) for job_id in job_ids))
            return
        with ctx.send_slots.hold(len(job_ids)):
            owners = [new_owner() for _ in job_ids]
            attempts = ctx.ledger.begin_many(job_ids, owners, count_delivery=False)
            futures: list[Future[str]] = []
            for job_id, owner, attempt in zip(job_ids, owners, attempts):
                if attempt.verdict in SENDABLE:
                    futures.append(
                        ctx.send_pool.submit(deliver_job, ctx, job_id, count_delivery=False, owner=owner, first=attempt)
                    )
                else:
                    log_verdict(job_id, attempt)
            wait(futures)
        for future in futures:
            if future.exception() is not None:
                log.error("member delivery failed", exc_info=future.exception())
