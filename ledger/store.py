"""`Ledger`: every read and state change of outcome records, each a bounded Redis step."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from config.celery import TASK_DELIVER
from config.errors import IdempotencyConflict, InvalidMessage
from config.keys import LANE_SINGLE, LANES, Keys
from config.quiet_window import LOOK_BACK_S, NO_WINDOWS, QuietHours
from config.settings import Settings
from ledger.clock import LedgerClock, ledger_now
from ledger.outbox import republish
from ledger.record import iso, to_record
from ledger.schema import (
    ARCHIVED_STEP,
    CLAIM_STEP,
    ENQUEUE_STEP,
    QUIET_ARGS,
    RELEASE_STEP,
    SCRIPT_ARGS,
    STEP,
    SWEEP_STEP,
    reply,
    reply_rows,
    row_args,
    script_args,
)
from ledger.scripts import CommonArgs, Scripts

PROBE_S_FACTOR = 1.5
"""A half-open probe owns the breaker for this many attempt bounds."""
BULK_AHEAD_S = 0.05
"""How far ahead bulk may reserve rate slots: a single waits behind bulk for at most this long."""


@dataclass(frozen=True)
class NewJob:
    """A validated message about to be recorded."""

    job_id: str
    lane: str
    to: str
    sender: str
    text: str
    callback: str | None
    forward: bool
    idempotency_key: str | None
    fingerprint: str
    expires_in_s: float
    send_at: float | None = None
    """Epoch seconds ahead of now: recorded as scheduled, with no broker message until then."""


@dataclass(frozen=True)
class Attempt:
    """What `begin` decided: `go` with the message, or why not."""

    verdict: str  # one of ledger.schema.BEGIN_VERDICTS
    number: int = 0
    to: str = ""
    sender: str = ""
    text: str = ""
    callback: str | None = None
    delay_s: float = 0.0
    probe: bool = False
    forward: bool = False
    detail: str = ""


class NotReplicated(Exception):
    """An enqueue step ran on the primary but too few replicas had it in time (`.pairs`: its results)."""

    def __init__(self, pairs: list[tuple[str, bool]]):
        super().__init__("the write reached too few replicas in time")
        self.pairs = pairs


C_UNREPLICATED = "unreplicated_acceptances"
"""The counter of outcome writes whose acceptance too few replicas had in time (ledger.schema.COUNTERS)."""
UNREPLICATED = "unreplicated"
"""Why a job was withdrawn, or a lease given back: too few replicas had the write in time
(one of ledger.schema.CANCEL_REASONS)."""


def _attempt(raw: list[Any]) -> Attempt:
    if raw[0] != "go":
        return Attempt(raw[0], detail=raw[1] if len(raw) > 1 else "")
    r = reply("begin", raw)
    return Attempt(
        r["verdict"],
        number=int(r["attempt"]),
        to=r["to"],
        sender=r["sender"],
        text=r["text"],
        callback=r["callback"] or None,
        delay_s=float(r["delay_s"]),
        probe=r["probe"] == "1",
        forward=r["forward"] == "1",
    )


def _finished(raw: list[Any]) -> tuple[str, str]:
    r = reply("finish", raw)
    return r["result"], r["change"]


def _operated(raw: list[Any]) -> tuple[bool, str]:
    r = reply("operate", raw)
    return r["status"] == "ok", r["detail"]


SMPP_KEEP_S = 600
"""How long an SMPP receipt naming no known message_id is kept for a late submit_sm_resp."""
SMPP_MAX_KEPT = 100_000
"""Most such receipts kept at once; the oldest is dropped (counted unmatched) beyond it."""


class Ledger:
    """Outcome records for one prefix on one Redis."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self._scripts = Scripts(client)
        self._common_args = CommonArgs(settings)
        self.budget = self._common_args.budget

        self._clock = LedgerClock(client, settings)
        self._quiet = QuietHours.parse(settings.quiet_hours, settings.quiet_hours_tz)
        self._quiet_windows: tuple[float, tuple[float, float, float, float]] = (float("-inf"), NO_WINDOWS)

    @property
    def _common(self) -> tuple[object, ...]:
        """The arguments every script takes first (COMMON_ARGS), today's budget days included."""
        return self._common_args()

    def _run(self, name: str, *args: object) -> Any:
        return self._scripts.run(name, *self._common, *args)

    def _run_many(self, name: str, calls: Iterable[tuple[object, ...]]) -> list[Any]:
        common = self._common
        return self._scripts.run_many(name, [(*common, *args) for args in calls])

    # A write an acknowledgement depends on (an enqueue, a lease) counts only once
    # COSMOS_REDIS_MIN_REPLICAS replicas have it: WAIT on the same connection, in the same round trip.
    def _run_replicated(self, name: str, *args: object) -> tuple[Any, bool]:
        wanted = self.settings.redis_min_replicas
        if wanted <= 0:
            return self._run(name, *args), True
        result, acked = self._scripts.run_durably(
            name, (*self._common, *args), wanted, self.settings.redis_wait_timeout_ms
        )
        return result, acked >= wanted

    def _run_many_replicated(self, name: str, calls: list[tuple[object, ...]]) -> tuple[list[Any], bool]:
        wanted = self.settings.redis_min_replicas
        if wanted <= 0:
            return self._run_many(name, calls), True
        common = self._common
        results, acked = self._scripts.run_many_durably(
            name, [(*common, *args) for args in calls], wanted, self.settings.redis_wait_timeout_ms
        )
        return results, acked >= wanted

    # --- producers -------------------------------------------------------------------
    def enqueue(
        self,
        jobs: Sequence[NewJob],
        messages: Sequence[tuple[int, int, str, str]] = (),
        *,
        batch_id: str = "",
        batch_fingerprint: str = "",
        batch_total: int = 0,
    ) -> list[tuple[str, bool]]:
        """Record up to ENQUEUE_STEP new jobs and push their broker messages atomically, in one script call.

        `messages` are (first, last, broker list, message), positions 1-based within `jobs`; each is
        pushed only when one of its jobs is new. Returns (job id, newly created) per job, in order.
        """
        if len(jobs) > ENQUEUE_STEP:
            raise ValueError(f"at most {ENQUEUE_STEP} jobs per enqueue step")
        args = [
            *script_args(
                "enqueue",
                batch_id=batch_id,
                batch_fingerprint=batch_fingerprint,
                batch_total=batch_total,
                jobs=len(jobs),
            ),
            *row_args(
                "enqueue",
                "jobs",
                (
                    {
                        "job_id": job.job_id,
                        "idem": job.idempotency_key or "",
                        "fingerprint": job.fingerprint,
                        "lane": job.lane,
                        "to": job.to,
                        "sender": job.sender,
                        "text": job.text,
                        "callback": job.callback or "",
                        "forward": int(job.forward),
                        "expires_in_s": job.expires_in_s,
                        "send_at": "" if job.send_at is None else job.send_at,
                    }
                    for job in jobs
                ),
            ),
            len(messages),
            *row_args(
                "enqueue",
                "messages",
                ({"first": f, "last": la, "queue": q, "message": m} for f, la, q, m in messages),
            ),
        ]
        result, replicated = self._run_replicated("enqueue", *args)
        if result[0] == "conflict":
            raise IdempotencyConflict(result[3], result[2])
        if result[0] == "batch_conflict":
            raise IdempotencyConflict(batch_id, "(batch)", what="batch id")
        if result[0] == "batch_cancelled":
            raise InvalidMessage("invalid_json", "batch_id", "was cancelled: it takes no new members")
        pairs = [(row["job"], row["created"] == "1") for row in reply_rows("enqueue", result[1:])]
        if not replicated:
            raise NotReplicated(pairs)
        # A withdrawn job its idempotency key named, recorded again: its broker message is not the row's.
        revived = [(job_id, job.lane) for (job_id, new), job in zip(pairs, jobs) if new and job_id != job.job_id]
        if revived:
            republish(self.redis, self.keys, revived)
        return pairs

    def withdraw(self, job_ids: Sequence[str]) -> tuple[list[str], bool]:
        """Withdraw jobs an unreplicated enqueue created (queued -> cancelled, a compare-and-set), waiting
        for replicas as the enqueue did: (the jobs withdrawn, whether enough replicas have the withdraw)."""
        calls = [self._operate_args("withdraw", job_id, UNREPLICATED, "") for job_id in job_ids]
        if not calls:
            return [], True
        results, replicated = self._run_many_replicated("operate", calls)
        return [job_id for job_id, r in zip(job_ids, results) if _operated(r)[0]], replicated

    def idempotency_owners(self, keys: Sequence[str]) -> list[str | None]:
        """The `job|fingerprint` each idempotency key maps to, read in pages (no writes)."""
        out: list[str | None] = []
        for start in range(0, len(keys), STEP):
            page = keys[start : start + STEP]
            out += [
                str(v) if v is not None else None for v in self.redis.mget([self.keys.idempotency(k) for k in page])
            ]
        return out

    # --- workers ---------------------------------------------------------------------
    def begin(self, job_id: str, owner: str, *, count_delivery: bool) -> Attempt:
        """Take (or renew) the job's lease and rate slot for one HTTP attempt, if the ledger allows one."""
        reply, replicated = self._run_replicated("begin", *self._begin_args(job_id, owner, count_delivery))
        return self._held_back(job_id, owner, _attempt(reply), replicated)

    def begin_many(
        self, job_ids: Sequence[str], owners: Sequence[str], *, count_delivery: bool | Sequence[bool]
    ) -> list[Attempt]:
        """`begin` for a whole chunk in one round trip; each job still gets its own lease.

        `count_delivery`: one flag for every job, or one per job.
        """
        counted = [count_delivery] * len(job_ids) if isinstance(count_delivery, bool) else list(count_delivery)
        calls = [self._begin_args(job_id, owner, c) for job_id, owner, c in zip(job_ids, owners, counted)]
        replies, replicated = self._run_many_replicated("begin", calls)
        return [
            self._held_back(job_id, owner, _attempt(r), replicated)
            for job_id, owner, r in zip(job_ids, owners, replies)
        ]

    def _held_back(self, job_id: str, owner: str, attempt: Attempt, replicated: bool) -> Attempt:
        """A lease too few replicas hold could vanish in a failover, and the job be sent twice: give it back."""
        if attempt.verdict != "go" or replicated:
            return attempt
        self.finish(job_id, owner, "release", error=UNREPLICATED, delay_s=self.settings.retry_backoff_base_s)
        return Attempt("wait", detail=UNREPLICATED)

    def take(self, job_id: str, owner: str, limit: int) -> tuple[Attempt, list[tuple[str, str, Attempt]]]:
        """Lease a single-lane task's own job, and take up to `limit` single-job messages waiting behind
        it off the lane's broker list and lease their jobs, in one atomic step: no message leaves the
        list without its lease. Returns the own job's attempt and (job, owner, attempt) per taken job.

        Safe to repeat with the same `owner` for TAKE_TTL_S (a lost reply): the same answer comes back.
        """
        args = script_args(
            "take",
            **self._begin_values(job_id, owner, True),
            queue=self.keys.broker_queue_key(LANE_SINGLE),
            limit=limit,
            task=TASK_DELIVER,
        )
        raw, replicated = self._run_replicated("take", *args)
        own = self._held_back(job_id, owner, _attempt(raw[0]), replicated)
        return own, [(job, o, self._held_back(job, o, _attempt(r), replicated)) for job, o, r in raw[1:]]

    def _begin_args(self, job_id: str, owner: str, count_delivery: bool) -> tuple[object, ...]:
        # A call id per call: redis-py's retry of this very command must not take a second attempt.
        return script_args("begin", **self._begin_values(job_id, owner, count_delivery), call=uuid.uuid4().hex)

    def _begin_values(self, job_id: str, owner: str, count_delivery: bool) -> dict[str, object]:
        s = self.settings
        return dict(
            job=job_id,
            owner=owner,
            lease_s=s.lease_s,
            policy=s.ambiguous_policy,
            max_attempts=s.max_attempts,
            poison_deliveries=s.poison_deliveries,
            count_delivery=int(count_delivery),
            rate=s.rate_limit,
            bulk_ahead_s=BULK_AHEAD_S,
            probe_s=s.attempt_bound_s * PROBE_S_FACTOR,
            max_ambiguous_resends=s.max_ambiguous_resends,
            probe_interval_s=s.pause_probe_interval_s,
            **self.quiet_windows(),
        )

    def recheck(self, job_id: str, owner: str, *, probe: bool) -> Attempt:
        """Whether a lease that waited for its rate slot may still send: a pause recorded meanwhile
        gives it back (`wait`), and the job waits like every other."""
        reply = self._run("recheck", *script_args("recheck", job=job_id, owner=owner, probe=int(probe)))
        return Attempt(reply[0], detail=reply[1] if len(reply) > 1 else "")

    def finish(self, job_id: str, owner: str, kind: str, **outcome: Any) -> tuple[str, str]:
        """Record an attempt's outcome (`outcome`: `finish_args`'s keywords); returns (what happened,
        breaker or pause change, or '')."""
        return _finished(self._run("finish", *self.finish_args(job_id, owner, kind, **outcome)))

    def finish_many(self, calls: Sequence[tuple[object, ...]]) -> list[tuple[str, str]]:
        """Several outcomes (each a `finish_args` tuple) in one round trip."""
        return [_finished(r) for r in self._run_many("finish", calls)] if calls else []

    def finish_each(self, calls: Sequence[tuple[object, ...]]) -> list[tuple[str, str] | Exception]:
        """`finish_many` with each call's own error in its place, none raised (the outcome writer
        answers each of its senders)."""
        # An acceptance must reach COSMOS_REDIS_MIN_REPLICAS replicas before the worker moves on (acks,
        # sends the next job): one lost to a failover would be sent again. WAIT rides the same pipeline.
        wanted = self.settings.redis_min_replicas
        accepted = wanted > 0 and any(dict(zip(SCRIPT_ARGS["finish"], args))["kind"] == "accepted" for args in calls)
        wait = (wanted, self.settings.redis_wait_timeout_ms) if accepted else None
        common = self._common
        results = self._scripts.run_each("finish", [(*common, *args) for args in calls], wait)
        if wait is not None:
            acked = results.pop()
            if isinstance(acked, Exception) or int(acked) < wanted:
                self.redis.hincrby(self.keys.counters, C_UNREPLICATED, 1)
        return [r if isinstance(r, Exception) else _finished(r) for r in results]

    def finish_args(
        self,
        job_id: str,
        owner: str,
        kind: str,
        *,
        status: str = "",
        http: int | None = None,
        latency_ms: int = 0,
        message_id: str = "",
        price: float = 0.0,
        error: str = "",
        delay_s: float = 0.0,
        call: str = "",
        route: str = "http",
        provider_status: str = "",
    ) -> tuple[object, ...]:
        """`call`: the outcome's id, the same on every try of it (a new one when empty)."""
        s = self.settings
        return script_args(
            "finish",
            call=call or uuid.uuid4().hex,
            job=job_id,
            owner=owner,
            kind=kind,
            status=status,
            http=http or 0,
            latency_ms=latency_ms,
            message_id=message_id,
            price=price,
            error=error[:300],
            policy=s.ambiguous_policy,
            breaker_threshold=s.breaker_threshold,
            breaker_open_s=s.breaker_open_s,
            breaker_cap_s=s.retry_backoff_max_s,
            delay_s=delay_s,
            max_ambiguous_resends=s.max_ambiguous_resends,
            route=route,
            provider_status=provider_status,
        )

    def claim_due(self, limit: int = CLAIM_STEP) -> list[tuple[str, str, str]]:
        """Jobs to (re)publish now: (job id, lane, why); also ends waiting jobs past their deadline."""
        return self.claim(limit)[0]

    def claim(self, limit: int = CLAIM_STEP, *, restarted: bool = False) -> tuple[list[tuple[str, str, str]], bool]:
        """`claim_due`, and whether more waiting jobs are past their deadline than this step ended.

        `restarted`: Redis restarted since the last look, so queued jobs' messages may be lost though
        their lane holds others: every queued job recorded before now is republished (in steps)."""
        k = self.keys
        flat = self._run(
            "claim",
            *script_args(
                "claim",
                limit=limit,
                single_list=k.broker_queue_key(LANES[0]),
                bulk_list=k.broker_queue_key(LANES[1]),
                probe_interval_s=self.settings.pause_probe_interval_s,
                lost_horizon_s=self.settings.requeue_grace_s if restarted else 0,
                **self.quiet_windows(),
            ),
        )
        rows = [(row["job"], row["lane"], row["why"]) for row in reply_rows("claim", flat)]
        return [r for r in rows if r[0]], any(not r[0] for r in rows)

    def release_due(self, limit: int = RELEASE_STEP) -> list[tuple[str, str, str]]:
        """Scheduled jobs now due, and bulk jobs the quiet hours held once they end, to publish now:
        (job id, lane, why), at most `limit`, in due order."""
        flat = self._run("release", *script_args("release", limit=limit, **self.quiet_windows()))
        return [(row["job"], row["lane"], row["why"]) for row in reply_rows("release", flat)]

    def sweep(self, limit: int = SWEEP_STEP) -> int:
        """Remove up to `limit` records whose retention ended, with their index entries and counts."""
        return int(self._run("sweep", *script_args("sweep", limit=limit)))

    # --- the archive -----------------------------------------------------------------
    def archive_pending(self, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` records due for the archive, (job id, when due), longest waiting first."""
        now = ledger_now(self.redis, self.settings)
        pairs: list[tuple[str, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
            self.keys.archive_pending, "-inf", now, start=0, num=limit, withscores=True
        )
        return [(str(m), float(s)) for m, s in pairs]

    def raw_many(self, job_ids: Sequence[str]) -> list[dict[str, str]]:
        """The ledger hashes of jobs, as stored ({} for a missing job), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return pipe.execute()

    def claim_archive(self, identity: str) -> str:
        """Record `identity` as this prefix's archive unless one is recorded (turning archiving on);
        returns the recorded one."""
        self.redis.set(self.keys.archive_identity, identity, nx=True)
        return str(self.redis.get(self.keys.archive_identity))

    def recorded_archive(self) -> str | None:
        value = self.redis.get(self.keys.archive_identity)
        return str(value) if value is not None else None

    def archived(self, pairs: Sequence[tuple[str, float]]) -> int:
        """The archive has these records as read: each unchanged since leaves the to-archive set."""
        done = 0
        for start in range(0, len(pairs), ARCHIVED_STEP):
            step = pairs[start : start + ARCHIVED_STEP]
            rows = row_args("archived", "pairs", [{"job": job_id, "score": repr(score)} for job_id, score in step])
            done += int(self._run("archived", *script_args("archived", pairs=len(step)), *rows))
        return done

    def redact(self, job_id: str, expected_to: str, values: dict[str, str]) -> bool:
        """Apply a record's redacted values (to, text, idem, callback; one-way) if it still holds
        `expected_to`; its entry in that number's index goes either way."""
        args = script_args("redact", job=job_id, expected_to=expected_to, **values)
        return int(self._run("redact", *args)) == 1

    def by_number_page(self, number: str, count: int = STEP) -> list[str]:
        """The first `count` jobs in a number's index."""
        return [str(m) for m in self.redis.zrange(self.keys.by_number(number), 0, count - 1)]

    # --- receipts --------------------------------------------------------------------
    def apply_receipt(self, job_id: str, *, to: str, status: str, message_id: str, price: float, timestamp: str) -> str:
        args = script_args(
            "receipt",
            job=job_id,
            to=to,
            status=status,
            message_id=message_id,
            price=price,
            receipt_timestamp=timestamp,
        )
        return str(self._run("receipt", *args))

    # --- the SMPP route --------------------------------------------------------------------
    def bind_slot(self, action: str, holder: str, slot: int = -1, lease_s: float = 0.0) -> int:
        """The fleet's bind slots (`bind.lua`): acquire, renew, release, count."""
        slots = self.settings.smpp_max_binds
        args = script_args("bind", action=action, holder=holder, slots=slots, lease_ms=int(lease_s * 1000), slot=slot)
        return int(self._run("bind", *args))

    def match_smpp_receipt(self, message_id: str, status: str, timestamp: str) -> tuple[str, str] | None:
        """(job, to) of the job `message_id` names, or None: the receipt is kept for a late acceptance."""
        r = self._smpp_receipt("match", message_id=message_id, status=status, timestamp=timestamp)
        return (r[0], r[1]) if r else None

    def due_smpp_receipts(self, limit: int = STEP) -> list[tuple[str, str, str, str, str]]:
        """Kept receipts whose job is known now: (job, to, message_id, status, timestamp); each stays
        kept until `smpp_receipt_done` (a crash before applying it retries it)."""
        flat = self._smpp_receipt("due", limit=limit)
        return [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4]) for i in range(0, len(flat), 5)]

    def smpp_receipt_done(self, message_id: str) -> None:
        self._smpp_receipt("done", message_id=message_id)

    def smpp_receipts_kept(self) -> int:
        return int(self._smpp_receipt("kept"))

    def _smpp_receipt(
        self, action: str, *, message_id: str = "", status: str = "", timestamp: str = "", limit: int = 0
    ) -> Any:
        args = script_args(
            "smpp_receipt",
            action=action,
            message_id=message_id,
            status=status,
            timestamp=timestamp,
            keep_s=SMPP_KEEP_S,
            max_kept=SMPP_MAX_KEPT,
            limit=limit,
        )
        return self._run("smpp_receipt", *args)

    def record_inbound(self, sender: str, to: str, text: str, word: str = "") -> str:
        """An inbound message; `word` opt_out / opt_in changes the sender's suppression (`inbound.lua`)."""
        url = self.settings.inbound_url or ""
        return str(self._run("inbound", *script_args("inbound", sender=sender, to=to, text=text, word=word, url=url)))

    def inbound_page(self, before: str = "+", count: int = 100) -> list[dict[str, Any]]:
        """Inbound messages, newest first, at most `count` (≤ STEP) older than `before` (exclusive)."""
        start = before if before == "+" else f"({before}"
        entries = cast(
            "list[tuple[str, dict[str, str]]]",
            self.redis.xrevrange(self.keys.inbound, start, "-", count=min(count, STEP)),
        )
        return [
            {
                "id": entry_id,
                "from": fields.get("from"),
                "to": fields.get("to"),
                "text": fields.get("text"),
                "received_at": iso(int(entry_id.split("-")[0]) / 1000),
            }
            for entry_id, fields in entries
        ]

    def forget_inbound_step(self, number: str, after: str = "-") -> tuple[str | None, int]:
        """Erase the inbound messages from `number` among the STEP entries after `after` (exclusive):
        a stream entry cannot be rewritten, so its `from` and `text` go with it. Returns (the cursor of
        the next step or None at the end, how many went)."""
        start = after if after == "-" else f"({after}"
        entries = cast("list[tuple[str, dict[str, str]]]", self.redis.xrange(self.keys.inbound, start, "+", count=STEP))
        mine = [entry_id for entry_id, fields in entries if fields.get("from") == number]
        gone = int(self.redis.xdel(self.keys.inbound, *mine)) if mine else 0
        return (entries[-1][0] if len(entries) == STEP else None), gone

    # --- operators -------------------------------------------------------------------
    def operate(self, action: str, job_id: str, reason: str = "cancelled", by: str = "") -> tuple[bool, str]:
        """One of ledger.schema.OPERATIONS (`by`: who asked, for the timeline); returns (done, lane or why not)."""
        return _operated(self._run("operate", *self._operate_args(action, job_id, reason, by)))

    def operate_many(
        self, action: str, job_ids: Sequence[str], reason: str = "cancelled", by: str = ""
    ) -> list[tuple[bool, str]]:
        """`operate` for up to STEP jobs in one round trip."""
        calls = [self._operate_args(action, job_id, reason, by) for job_id in job_ids]
        return [_operated(r) for r in self._run_many("operate", calls)] if calls else []

    def _operate_args(self, action: str, job_id: str, reason: str, by: str) -> tuple[object, ...]:
        expires_in_s = self.settings.default_expires_in_s
        return script_args("operate", action=action, job=job_id, expires_in_s=expires_in_s, cancel_reason=reason, by=by)

    # --- locks -----------------------------------------------------------------------
    def take_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        """`{P}:lock:<name>` for `token` unless another holder has it; it expires after `ttl_ms`."""
        return bool(self.redis.set(self.keys.lock(name), token, nx=True, px=ttl_ms))

    def release_lock(self, name: str, token: str) -> bool:
        """Give the lock back, only if `token` still holds it."""
        return bool(self._run("lock_release", *script_args("lock_release", name=name, token=token)))

    # --- reads -----------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any] | None:
        return to_record(job_id, self.redis.hgetall(self.keys.job(job_id)))  # type: ignore[arg-type]

    def get_many(self, job_ids: Iterable[str]) -> list[dict[str, Any] | None]:
        job_ids = list(job_ids)
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [to_record(job_id, raw) for job_id, raw in zip(job_ids, pipe.execute())]

    def states(self, job_ids: Sequence[str]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "state")
        return pipe.execute()

    def page_ids(self, zset: str, after: float = float("-inf"), count: int = STEP) -> list[tuple[str, float]]:
        """Up to `count` members of a time-scored set with a score above `after`, oldest first."""
        low = "-inf" if after == float("-inf") else f"({after!r}"
        pairs: list[tuple[str, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
            zset, low, "+inf", start=0, num=count, withscores=True
        )
        return [(str(m), float(s)) for m, s in pairs]

    def iter_ids(self, zset: str, step: int = STEP) -> Iterator[list[str]]:
        """Every member of a time-scored set, a page at a time (a cursor by score, never capped).

        Members sharing one score across a page boundary are found by re-reading that score.
        """
        after = float("-inf")
        seen_at_after: set[str] = set()
        while True:
            low = "-inf" if after == float("-inf") else repr(after)
            pairs: list[tuple[str, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
                zset, low, "+inf", start=0, num=step + len(seen_at_after), withscores=True
            )
            fresh = [(m, s) for m, s in pairs if not (s == after and m in seen_at_after)]
            if not fresh:
                return
            page = fresh[:step]
            yield [str(m) for m, _ in page]
            last = float(page[-1][1])
            seen_at_after = {str(m) for m, s in page if s == last} | (seen_at_after if last == after else set())
            after = last
            if len(fresh) < step:
                return

    def listed(self, zset: str, reason: str | None = None) -> Iterator[dict[str, Any]]:
        """Records of a dead or held set, oldest first, page by page."""
        for ids in self.iter_ids(zset):
            for record in self.get_many(ids):
                if record is not None and (reason is None or record["dead_reason"] == reason):
                    yield record

    def dead_ids(self, reason: str | None = None) -> Iterator[list[str]]:
        """Dead job ids (of one reason), a page at a time."""
        for ids in self.iter_ids(self.keys.dead):
            if reason is None:
                yield ids
                continue
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(self.keys.job(job_id), "dead_reason")
            yield [job_id for job_id, why in zip(ids, pipe.execute()) if why == reason]

    def quiet_windows(self) -> dict[str, float]:
        """The quiet hours' window in force (or next) and the one after, by QUIET_ARGS name; zeros for none."""
        if self._quiet is None:
            return dict(zip(QUIET_ARGS, NO_WINDOWS))
        now = self._clock.now()
        valid_until, windows = self._quiet_windows
        if now >= valid_until:  # the pair changes only once the first window has ended
            windows = self._quiet.windows(now)
            self._quiet_windows = (min(windows[1] + LOOK_BACK_S, now + 60), windows)
        return dict(zip(QUIET_ARGS, windows))

    def quiet_until(self, now: float) -> float | None:
        """When the quiet hours in force at `now` (ledger time) end, or None."""
        return None if self._quiet is None else self._quiet.until(now)

    def dead_page(self, until_ts: float, skip: int, count: int = STEP) -> list[str]:
        """Dead job ids that died by `until_ts`, oldest first, from position `skip`."""
        ids = self.redis.zrangebyscore(self.keys.dead, "-inf", until_ts, start=skip, num=count)
        return [str(i) for i in ids]

    def dead_reasons(self, job_ids: Sequence[str]) -> list[str | None]:
        """Each job's dead reason (None: its record is gone)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "dead_reason")
        return pipe.execute()

    def forget_dead(self, job_ids: Sequence[str]) -> None:
        """Drop dead-set entries whose record expired (stale entries)."""
        if job_ids:
            self.redis.zrem(self.keys.dead, *job_ids)

    def now(self) -> float:
        """The scripts' clock (Redis TIME plus the test offset), for times computed in Python."""
        return ledger_now(self.redis, self.settings)

    # --- budget ----------------------------------------------------------------------
    def resume_budget(self, by: str) -> tuple[bool, str]:
        """Lift today's budget pause for the rest of the day: (done, the cap it lifted or why not)."""
        r = reply("budget", self._run("budget", *script_args("budget", action="resume", by=by)))
        return r["status"] == "ok", r["detail"]

    def budget_announcements(self) -> list[tuple[int, str, int, int]]:
        """Warning levels reached today and not logged yet, now marked logged: (level, reason, messages, µ$)."""
        flat = self._run("budget", *script_args("budget", action="announce", by=""))
        return [(int(r["level"]), r["reason"], int(r["messages"]), int(r["price"])) for r in reply_rows("budget", flat)]

    def counters(self) -> dict[str, str]:
        return self.redis.hgetall(self.keys.counters)  # type: ignore[return-value]

    def breaker(self) -> dict[str, str]:
        return self.redis.hgetall(self.keys.breaker)  # type: ignore[return-value]

    def pause_state(self) -> dict[str, str]:
        return self.redis.hgetall(self.keys.pause)  # type: ignore[return-value]

    def suppressed(self) -> Iterator[str]:
        """Numbers on the suppression list, by SSCAN (never one long call)."""
        for number in self.redis.sscan_iter(self.keys.suppressed, count=STEP):
            yield str(number)

    def unsuppress(self, numbers: Iterable[str], force: bool = False) -> list[str]:
        """Lift `operator` and `blacklist` (and `opt_out` with `force`) from each number (≤ STEP):
        `removed`, `kept` (another reason remains) or `absent`, per number."""
        calls = [script_args("unsuppress", number=number, force=int(force)) for number in numbers]
        return [str(r) for r in self._run_many("unsuppress", calls)] if calls else []

    def suppression_reasons(self, number: str) -> tuple[bool, dict[str, float | None]]:
        """(on the list, reason -> since); a number listed before reasons were kept shows `operator`, since unknown."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.sismember(self.keys.suppressed, number)
        pipe.hgetall(self.keys.suppression(number))
        listed, raw = pipe.execute()
        reasons: dict[str, float | None] = {str(k): float(v) for k, v in raw.items()}
        if listed and not reasons:
            reasons["operator"] = None
        return bool(listed), reasons

    def suppress(self, numbers: Iterable[str]) -> int:
        numbers = list(numbers)
        if not numbers:
            return 0
        since = self.now()  # the ledger's clock, as the scripts that add the other reasons use
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.suppressed, *numbers)
        for number in numbers:  # the reason, so an opt-in (START) never lifts an operator's suppression
            pipe.hsetnx(self.keys.suppression(number), "operator", since)
        return int(pipe.execute()[0])

    # --- batches ---------------------------------------------------------------------
    def close_batch(self, batch_id: str) -> bool:
        """Mark a batch cancelled: `enqueue` refuses it new members. False if there is no such batch."""
        return bool(self._run("batch_close", *script_args("batch_close", batch_id=batch_id)))

    def batch_info(self, batch_id: str) -> dict[str, Any] | None:
        raw: dict[str, str] = self.redis.hgetall(self.keys.batch(batch_id))  # type: ignore[assignment]
        if not raw or "total" not in raw:
            return None
        return {
            "batch_id": batch_id,
            "total": int(raw["total"]),
            "states": {k.split(":", 1)[1]: int(v) for k, v in raw.items() if k.startswith("state:") and int(v)},
            "created_at": iso(raw.get("created_ts")),
            "cancelled": raw.get("cancelled") == "1",
        }
