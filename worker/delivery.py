"""Sending one job: lease, attempt burst (tenacity), record each outcome, defer when spent.

The ledger decides everything that must be atomic; this module only talks to COSMOS
between two ledger calls and sleeps between attempts.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

from config.redis_client import ride_out
from cosmos_api.callback_token import callback_url
from cosmos_api.outcomes import Outcome
from ledger.store import Attempt
from worker.context import WorkerContext
from worker.retry_policy import backoff, delay_after

log = structlog.get_logger("cosmos.delivery")

_HOST = f"{socket.gethostname()}:{os.getpid()}"
RETRY = "retry"
"""An attempt's result that asks tenacity for another attempt in this burst."""
ACCOUNT_STATUSES = frozenset({"unauthorized"})
"""COSMOS statuses about our account, not the message: they pause sending instead of killing the job."""


def new_owner() -> str:
    """A lease owner id: this process and one delivery in it."""
    return f"{_HOST}:{uuid.uuid4().hex[:12]}"


def outcome_kind(outcome: Outcome) -> str:
    """The ledger's kind for an answer: an account-level refusal (bad credentials, or a 404 from a wrong
    COSMOS_API_URL) is true of every message, so it pauses sending rather than decide this job."""
    if outcome.status in ACCOUNT_STATUSES or outcome.http == 404:
        return "account"
    return outcome.kind


def deliver_job(
    ctx: WorkerContext,
    job_id: str,
    *,
    count_delivery: bool,
    owner: str | None = None,
    first: Attempt | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send one job if the ledger lets us; returns how this delivery ended.

    `first` is a lease already taken for `owner` (a bulk chunk takes its leases in one round trip).
    """
    owner = owner or new_owner()
    settings = ctx.settings
    taken = [first] if first is not None else []
    made = [first.number if first is not None else 0]  # attempts made so far, as the ledger counts them

    def record(*args: object, **kwargs: object) -> tuple[str, str]:
        # An outcome COSMOS gave us must reach the ledger: ride out a Redis blip for as long
        # as our lease lasts, or a sent message would later count as ambiguous. Every try carries
        # the outcome's one call id, so a try whose reply was lost is not counted twice.
        call = uuid.uuid4().hex
        return ride_out(lambda: ctx.outcomes.finish(*args, call=call, **kwargs), settings.lease_s / 2, sleep)  # type: ignore[arg-type]

    def attempt_once() -> str:
        attempt = taken.pop() if taken else begin(ctx, job_id, owner, count_delivery, sleep)
        if attempt.verdict == "busy":
            attempt = begin(ctx, job_id, owner, count_delivery, sleep)
        if attempt.verdict != "go":
            log_verdict(job_id, attempt)
            return attempt.verdict
        made[0] = attempt.number
        if attempt.delay_s > 0:
            sleep(attempt.delay_s)  # our reserved rate slot
            # A pause recorded while we waited stops this request too (one short script per delayed send).
            still = ride_out(
                lambda: ctx.ledger.recheck(job_id, owner, probe=attempt.probe), settings.lease_s / 2, sleep
            )
            if still.verdict != "go":
                log_verdict(job_id, still)
                return still.verdict
        outcome = ctx.client.send(attempt.to, attempt.sender, attempt.text, _callback_for(ctx, job_id, attempt))
        kind = outcome_kind(outcome)
        result, change = record(
            job_id,
            owner,
            kind,
            status=outcome.status,
            http=outcome.http,
            latency_ms=outcome.latency_ms,
            message_id=outcome.message_id,
            price=outcome.price,
            error=outcome.error,
            delay_s=outcome.retry_after_s,
            route=outcome.route,
            provider_status=outcome.raw_status,
        )
        _log_outcome(ctx, job_id, attempt, outcome, kind, result, change)
        return RETRY if result == "retry" else result

    def before_sleep(state: RetryCallState) -> None:
        log.info(
            "retrying in-call",
            job_id=job_id,
            attempt=state.attempt_number,
            wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
        )

    burst = Retrying(
        stop=stop_after_attempt(settings.burst_attempts),
        wait=backoff(settings),
        retry=retry_if_result(lambda result: result == RETRY),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: "burst_spent",
        sleep=sleep,
    )
    result: str = burst(attempt_once)
    if result == "burst_spent":
        delay = delay_after(settings, made[0])
        result, _ = record(job_id, owner, "defer", delay_s=delay)
        log.info("retry scheduled", job_id=job_id, attempts=made[0], delay_s=round(delay, 2))
    return result


def begin(ctx: WorkerContext, job_id: str, owner: str, count_delivery: bool, sleep: Callable[[float], None]) -> Attempt:
    """Take the lease. A bulk job with no rate slot near waits behind the process's bulk gate:
    one thread per process asks Redis again, when the ledger says a slot comes; the others wait locally."""
    attempt = ctx.ledger.begin(job_id, owner, count_delivery=count_delivery)
    if attempt.verdict != "busy":
        return attempt
    with ctx.bulk_gate:
        while attempt.verdict == "busy":
            sleep(float(attempt.detail))
            attempt = ctx.ledger.begin(job_id, owner, count_delivery=count_delivery)
    return attempt


def _callback_for(ctx: WorkerContext, job_id: str, attempt: Attempt) -> str | None:
    """The application's own callback, unless we forward outcomes to it: then COSMOS gets ours."""
    if attempt.callback and not attempt.forward:
        return attempt.callback
    s = ctx.settings
    if not s.webhook_url or s.webhook_secret is None:
        return None
    expires = time.time() + s.retention_s  # the token lives as long as the record may
    return callback_url(s.webhook_url, job_id, s.webhook_secret.get_secret_value(), expires_ts=expires)


def log_verdict(job_id: str, attempt: Attempt) -> None:
    if attempt.verdict in ("dead", "held", "expired"):
        log.warning("job ended before sending", job_id=job_id, state=attempt.verdict, reason=attempt.detail)
    elif attempt.verdict == "sent":
        log.info("job settled by a receipt already stored; not sent again", job_id=job_id)
    elif attempt.verdict == "wait":
        log.debug("job waits", job_id=job_id, why=attempt.detail)
    else:
        log.debug("delivery skipped", job_id=job_id, verdict=attempt.verdict, reason=attempt.detail)


def _log_outcome(
    ctx: WorkerContext, job_id: str, attempt: Attempt, outcome: Outcome, kind: str, result: str, change: str
) -> None:
    if change == "open":
        log.error("circuit breaker opened: COSMOS keeps failing", last_status=outcome.status)
    elif change == "closed":
        log.warning("circuit breaker closed: COSMOS answers again")
    fields = dict(
        job_id=job_id,
        attempt=attempt.number,
        status=outcome.status,
        http=outcome.http,
        latency_ms=outcome.latency_ms,
        result=result,
    )
    if kind == "account":
        # Logged when sending pauses and at each probe (one per probe interval across all workers).
        if change == "paused" or attempt.probe:
            what = "our credentials" if outcome.status in ACCOUNT_STATUSES else "the endpoint (check COSMOS_API_URL)"
            log.error(
                f"COSMOS refused {what}: all sending paused; probing every "
                f"{ctx.settings.pause_probe_interval_s:g} s until it is accepted",
                probe=attempt.probe,
                **fields,
            )
    elif outcome.kind == "accepted":
        if attempt.probe:
            log.warning("probe accepted: sending resumes", **fields)
        log.debug("sent", message_id=outcome.message_id, **fields)
    elif outcome.kind == "permanent":
        log.info("dead-lettered", **fields)
    elif outcome.status == "connect_error":
        # A wrong host or port, or COSMOS down: name them, since every message fails the same way.
        target = urlsplit(ctx.settings.api_url)
        log.warning(
            "COSMOS not reachable: no connection opened",
            host=target.hostname,
            port=target.port or (443 if target.scheme == "https" else 80),
            cosmos_api_url=ctx.settings.api_url,
            error=outcome.error,
            **fields,
        )
    else:
        log.info("attempt failed", kind=outcome.kind, error=outcome.error, **fields)
