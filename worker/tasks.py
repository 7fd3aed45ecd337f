"""The Celery tasks: named after what they do, carrying job ids only."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, wait

import structlog
from celery import Celery

from config.celery import TASK_DELIVER, TASK_DELIVER_BATCH
from config.keys import LANE_BULK
from config.redis_client import ride_out
from config.settings import Settings
from ledger.outbox import republish
from ledger.store import Attempt
from worker.context import WorkerContext, get_context
from worker.delivery import deliver_job, log_verdict, new_owner

log = structlog.get_logger("cosmos.tasks")
SENDABLE = frozenset({"go", "busy"})
"""Verdicts of a group's first `begin` that go on to a send thread (`busy`: it waits for a rate slot)."""


def register_tasks(app: Celery, settings: Settings) -> None:
    # shared=False: a task bound to these settings belongs to this app only, not to every app built later.
    @app.task(name=TASK_DELIVER, ignore_result=True, shared=False)
    def deliver(job_id: str) -> None:
        """Send one SMS job (lease, attempts, outcome) — the argument is its job id.

        With send threads free, the single jobs waiting behind it in the lane go with it.
        """
        ctx = get_context(settings)
        slots = ctx.send_slots.take_free(settings.bulk_chunk_size - 1)
        try:
            if slots == 0:
                deliver_job(ctx, job_id, count_delivery=True)
                return
            owner = new_owner()
            # One atomic step takes the waiting messages and leases their jobs; repeated with the same
            # owner after a Redis blip, it answers the same (nothing taken is ever left without a lease).
            own, taken = ride_out(lambda: ctx.ledger.take(job_id, owner, slots), settings.lease_s / 2)
            ctx.send_slots.give_back(slots - len(taken))
            slots = len(taken)  # held until the group is done
            if taken:
                log.debug("single jobs taken beside a task", jobs=len(taken))
            # Only the task's own message counts as a delivery: a job taken beside it that kills the
            # worker has its own poison count when it comes back on its own.
            members = [(job_id, owner, own, True)] + [(job, o, attempt, False) for job, o, attempt in taken]
            send_leased(ctx, members, here=1)
        finally:
            ctx.send_slots.give_back(slots)

    @app.task(name=TASK_DELIVER_BATCH, ignore_result=True, bind=True, shared=False)
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
            send_group(ctx, job_ids, counted=[False] * len(job_ids), here=0)


def send_group(ctx: WorkerContext, job_ids: Sequence[str], *, counted: Sequence[bool], here: int) -> None:
    """Lease a group of jobs in one round trip and send them concurrently (`send_leased`)."""
    owners = [new_owner() for _ in job_ids]
    attempts = ctx.ledger.begin_many(job_ids, owners, count_delivery=counted)
    send_leased(ctx, list(zip(job_ids, owners, attempts, counted)), here=here)


def send_leased(ctx: WorkerContext, members: Sequence[tuple[str, str, Attempt, bool]], *, here: int) -> None:
    """Send (job, owner, attempt, counted) members whose `begin` is done: the first `here` in this
    thread, the rest on send threads whose slots the caller holds."""
    futures: list[Future[str]] = []
    mine = []
    for n, (job_id, owner, attempt, count) in enumerate(members):
        if attempt.verdict not in SENDABLE:
            log_verdict(job_id, attempt)
        elif n < here:
            mine.append((job_id, owner, attempt, count))
        else:
            futures.append(
                ctx.send_pool.submit(deliver_job, ctx, job_id, count_delivery=False, owner=owner, first=attempt)
            )
    try:
        for job_id, owner, attempt, count in mine:
            deliver_job(ctx, job_id, count_delivery=count, owner=owner, first=attempt)
    finally:
        wait(futures)  # the caller's send slots stay held until every member is done
    for future in futures:
        if future.exception() is not None:
            log.error("member delivery failed", exc_info=future.exception())
