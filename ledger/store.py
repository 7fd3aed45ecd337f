"""`Ledger`: every read and state change of outcome records, one Redis round trip each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import redis

from config.keys import Keys
from config.settings import Settings
from cosmos_api.errors import IdempotencyConflict
from ledger.record import to_record
from ledger.scripts import Scripts

RECEIPT_RESULTS = ("applied", "pending", "duplicate", "extra", "settled_held", "unknown_job", "to_mismatch")
PROBE_S_FACTOR = 1.5
"""A half-open probe owns the breaker for this many attempt bounds."""
RATE_INLINE_MAX_S = 0.25
"""Longest wait for a rate token inside a task; longer waits go to the due set."""


@dataclass(frozen=True)
class NewJob:
    """A validated message about to be recorded."""

    job_id: str
    lane: str
    to: str
    sender: str
    text: str
    callback: str | None
    idempotency_key: str | None
    fingerprint: str
    expires_in_s: int


@dataclass(frozen=True)
class Attempt:
    """What `begin` decided: `go` with the message, or why not."""

    verdict: str  # go | sleep | wait | skip | held | dead | expired
    number: int = 0
    to: str = ""
    sender: str = ""
    text: str = ""
    callback: str | None = None
    created_ts: float = 0.0
    detail: str = ""


def _attempt(reply: list) -> Attempt:
    if reply[0] == "go":
        return Attempt("go", int(reply[1]), reply[2], reply[3], reply[4], reply[5] or None, float(reply[6]))
    return Attempt(reply[0], detail=reply[1] if len(reply) > 1 else "")


class Ledger:
    """Outcome records for one prefix on one Redis."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self._scripts = Scripts(client)

    def _run(self, name: str, *args: object):
        return self._scripts.run(name, self.keys.prefix, *args)

    # --- producers -------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], messages: Sequence[tuple[str, str]] = ()) -> list[tuple[str, bool]]:
        """Record new jobs and push their broker messages atomically, in one round trip.

        Returns (job id, newly created) per job, in order; the messages are pushed only
        when at least one job is new (an idempotent repeat publishes nothing).
        """
        args: list[object] = [self.settings.requeue_grace_s, len(jobs)]
        for job in jobs:
            args += [job.job_id, job.idempotency_key or "", job.fingerprint, job.lane, job.to,
                     job.sender, job.text, job.callback or "", job.expires_in_s]
        args.append(len(messages))
        for queue_key, message in messages:
            args += [queue_key, message]
        result = self._run("enqueue", *args)
        if result[0] == "conflict":
            raise IdempotencyConflict(result[3], result[2])
        pairs = result[1:]
        return [(pairs[i], pairs[i + 1] == "1") for i in range(0, len(pairs), 2)]

    # --- workers ---------------------------------------------------------------------
    def begin(self, job_id: str, owner: str, *, count_delivery: bool) -> Attempt:
        """Take (or renew) the job's lease for one HTTP attempt, if the ledger allows one."""
        return _attempt(self._run("begin", *self._begin_args(job_id, owner, count_delivery)))

    def begin_many(self, job_ids: Sequence[str], owners: Sequence[str], *, count_delivery: bool) -> list[Attempt]:
        """`begin` for a whole chunk in one round trip; each job still gets its own lease."""
        calls = [(self.keys.prefix, *self._begin_args(job_id, owner, count_delivery))
                 for job_id, owner in zip(job_ids, owners)]
        return [_attempt(r) for r in self._scripts.run_many("begin", calls)]

    def _begin_args(self, job_id: str, owner: str, count_delivery: bool) -> tuple:
        s = self.settings
        return (job_id, owner, s.lease_s, s.ambiguous_policy, s.max_attempts, s.poison_deliveries,
                int(count_delivery), s.breaker_open_s, s.rate_limit, RATE_INLINE_MAX_S, s.retention_s,
                s.attempt_bound_s * PROBE_S_FACTOR)

    def finish(self, job_id: str, owner: str, kind: str, *, status: str = "", http: int | None = None,
               latency_ms: int = 0, message_id: str = "", price: float = 0.0, error: str = "",
               delay_s: float = 0.0) -> tuple[str, str]:
        """Record an attempt's outcome; returns (what happened, breaker change or '')."""
        s = self.settings
        r = self._run("finish", job_id, owner, kind, status, http or 0, latency_ms, message_id, price,
                      error[:300], s.ambiguous_policy, s.retention_s, s.breaker_threshold,
                      s.breaker_open_s, delay_s)
        return r[0], r[1]

    def claim_due(self, limit: int = 1000) -> list[tuple[str, str, str]]:
        """Jobs to (re)publish now: (job id, lane, why)."""
        flat = self._run("claim", self.settings.requeue_grace_s, limit)
        return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]

    # --- receipts --------------------------------------------------------------------
    def apply_receipt(self, job_id: str, *, to: str, status: str, message_id: str, price: float,
                      timestamp: str) -> str:
        return self._run("receipt", job_id, to, status, message_id, price, timestamp,
                         self.settings.retention_s)

    # --- operators -------------------------------------------------------------------
    def operate(self, action: str, job_id: str) -> tuple[bool, str]:
        """cancel | requeue | resend | mark_sent | purge; returns (done, lane or why not)."""
        r = self._run("operate", action, job_id, 0, self.settings.default_expires_in_s,
                      self.settings.retention_s)
        return r[0] == "ok", r[1]

    # --- reads -----------------------------------------------------------------------
    def get(self, job_id: str) -> dict | None:
        return to_record(self.redis.hgetall(self.keys.job(job_id)))

    def get_many(self, job_ids: Iterable[str]) -> list[dict | None]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [to_record(raw) for raw in pipe.execute()]

    def states(self, job_ids: Sequence[str]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "state")
        return pipe.execute()

    def listed(self, zset: str, reason: str | None = None, limit: int = 10_000) -> list[dict]:
        """Records of a dead or held list, oldest first, dropping entries whose record expired."""
        ids = self.redis.zrange(zset, 0, limit - 1)
        records = []
        for job_id, record in zip(ids, self.get_many(ids)):
            if record is None:
                self.redis.zrem(zset, job_id)
            elif reason is None or record["dead_reason"] == reason:
                records.append(record)
        return records

    def dead_ids(self, reason: str | None = None) -> list[str]:
        return [r["job_id"] for r in self.listed(self.keys.dead, reason)]

    def counters(self) -> dict[str, str]:
        return self.redis.hgetall(self.keys.counters)

    def breaker(self) -> dict[str, str]:
        return self.redis.hgetall(self.keys.breaker)

    def suppressed(self) -> list[str]:
        return sorted(self.redis.smembers(self.keys.suppressed))

    def unsuppress(self, numbers: Iterable[str]) -> int:
        numbers = list(numbers)
        return self.redis.srem(self.keys.suppressed, *numbers) if numbers else 0
