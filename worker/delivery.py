"""Sending one job: lease, attempt burst (tenacity), record each outcome, defer when spent.

The ledger decides everything that must be atomic; this module only talks to COSMOS
between two ledger calls and sleeps between attempts.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import redis
import structlog
from tenacity import (
    RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, stop_after_delay,
    wait_exponential,
)

from cosmos_api.callback_token import callback_url
from ledger.store import Attempt
from worker.context import WorkerContext
from worker.retry_policy import backoff, delay_after

log = structlog.get_logger("cosmos.delivery")

_HOST = f"{socket.gethostname()}:{os.getpid()}"
RETRY = "retry"
"""An attempt's result that asks tenacity for another attempt in this burst."""


def new_owner() -> str:
    """A lease owner id: this process and one delivery in it."""
    return f"{_HOST}:{uuid.uuid4().hex[:12]}"


def deliver_job(ctx: WorkerContext, job_id: str, *, count_delivery: bool, owner: str | None = None,
                first: Attempt | None = None, sleep=time.sleep) -> str:
    """Send one job if the ledger lets us; returns how this delivery ended.

    `first` is a lease already taken for `owner` (a bulk chunk takes its leases in one round trip).
    """
    owner = owner or new_owner()
    settings = ctx.settings
    taken = [first] if first is not None else []
    made = [first.number if first is not None else 0]  # attempts made so far, as the ledger counts them

    def record(*args, **kwargs) -> tuple[str, str]:
        # An outcome COSMOS gave us must reach the ledger: ride out a Redis blip for as long
        # as our lease lasts, or a sent message would later count as ambiguous.
        try:
            return ctx.ledger.finish(*args, **kwargs)  # the usual case, without tenacity's cost
        except (redis.ConnectionError, redis.TimeoutError):
            return Retrying(
                stop=stop_after_delay(settings.lease_s / 2), wait=wait_exponential(multiplier=0.1, max=2),
                retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)), reraise=True,
                sleep=sleep,
            )(ctx.ledger.finish, *args, **kwargs)

    def attempt_once() -> str:
        attempt = taken.pop() if taken else _begin(ctx, job_id, owner, count_delivery, sleep)
        if attempt.verdict != "go":
            log_verdict(job_id, attempt)
            return attempt.verdict
        made[0] = attempt.number
        callback = attempt.callback or _our_callback(ctx, job_id)
        outcome = ctx.client.send(attempt.to, attempt.sender, attempt.text, callback)
        result, breaker = record(
            job_id, owner, outcome.kind, status=outcome.status, http=outcome.http,
            latency_ms=outcome.latency_ms, message_id=outcome.message_id, price=outcome.price,
            error=outcome.error,
        )
        _log_outcome(job_id, attempt.number, outcome, result, breaker)
        return RETRY if result == "retry" else result

    def before_sleep(state: RetryCallState) -> None:
        log.info("retrying in-call", job_id=job_id, attempt=state.attempt_number,
                 wait_s=round(state.next_action.sleep, 3))

    burst = Retrying(
        stop=stop_after_attempt(settings.burst_attempts),
        wait=backoff(settings),
        retry=retry_if_result(lambda result: result == RETRY),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: "burst_spent",
        sleep=sleep,
    )
    result = burst(attempt_once)
    if result == "burst_spent":
        delay = delay_after(settings, made[0])
        result, _ = record(job_id, owner, "defer", delay_s=delay)
        log.info("retry scheduled", job_id=job_id, attempts=made[0], delay_s=round(delay, 2))
    return result


def _begin(ctx: WorkerContext, job_id: str, owner: str, count_delivery: bool, sleep) -> Attempt:
    """Take the lease; a short wait for a rate token happens here, a long one in the due set."""
    while True:
        attempt = ctx.ledger.begin(job_id, owner, count_delivery=count_delivery)
        if attempt.verdict != "sleep":
            return attempt
        sleep(float(attempt.detail))


def _our_callback(ctx: WorkerContext, job_id: str) -> str | None:
    s = ctx.settings
    if not s.webhook_url:
        return None
    return callback_url(s.webhook_url, job_id, s.webhook_secret.get_secret_value())


def log_verdict(job_id: str, attempt: Attempt) -> None:
    if attempt.verdict in ("dead", "held", "expired"):
        log.warning("job ended before sending", job_id=job_id, state=attempt.verdict, reason=attempt.detail)
    elif attempt.verdict == "wait":
        log.debug("job waits", job_id=job_id, until=attempt.detail)
    else:
        log.debug("delivery skipped", job_id=job_id, verdict=attempt.verdict, reason=attempt.detail)


def _log_outcome(job_id: str, number: int, outcome, result: str, breaker: str) -> None:
    if breaker == "open":
        log.error("circuit breaker opened: COSMOS keeps failing", last_status=outcome.status)
    elif breaker == "closed":
        log.warning("circuit breaker closed: COSMOS answers again")
    fields = dict(job_id=job_id, attempt=number, status=outcome.status, http=outcome.http,
                  latency_ms=outcome.latency_ms, result=result)
    if outcome.kind == "accepted":
        log.debug("sent", message_id=outcome.message_id, **fields)
    elif outcome.status == "unauthorized":
        log.error("COSMOS refused our credentials; recover with `cosmos-sms dead requeue --reason unauthorized`",
                  **fields)
    elif outcome.http == 404:
        log.error("COSMOS answered 404: check COSMOS_API_URL", **fields)
    elif outcome.kind == "permanent":
        log.info("dead-lettered", **fields)
    else:
        log.info("attempt failed", kind=outcome.kind, error=outcome.error, **fields)
