"""`SmsProducer`: validate everything, check every key, then record jobs and their broker messages
in bounded atomic steps."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property, partial
from typing import Any

import redis

from config.errors import EnqueueFailed, IdempotencyConflict, InvalidMessage
from config.keys import LANE_BULK, LANE_SINGLE, Keys
from config.redis_client import redis_client, ride_out
from config.settings import Settings
from cosmos_api.rules import validate_message
from ledger import operations
from ledger.outbox import chunk_messages, single_message
from ledger.schema import ENQUEUE_STEP, batch_job_id
from ledger.store import Ledger, NewJob, NotReplicated
from producers.send_at import check_ahead, parse_send_at

MESSAGE_FIELDS = frozenset({"to", "sender", "text", "callback", "idempotency_key", "expires_in", "send_at"})
MAX_BATCH_ID_CHARS = 200
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class SmsProducer:
    """Enqueues jobs on one Redis; thread-safe; cheap to keep for the life of the process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_client(self.settings, role="producer")

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings)

    # --- enqueue ---------------------------------------------------------------------
    def send_sms(
        self,
        to: str,
        sender: str,
        text: str,
        callback: str | None = None,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
        send_at: Any = None,
    ) -> str:
        job = self._job(uuid.uuid4().hex, LANE_SINGLE, to, sender, text, callback, idempotency_key, expires_in, send_at)
        [job] = self._place([job])
        queue_key, message = single_message(self.keys, LANE_SINGLE, job.job_id)
        messages = [] if job.send_at is not None else [(1, 1, queue_key, message)]
        try:
            [(job_id, _)] = ride_out(lambda: self.ledger.enqueue([job], messages), self.settings.enqueue_timeout_s)
        except NotReplicated as exc:
            raise EnqueueFailed(
                f"too few replicas had the job within {self.settings.redis_wait_timeout_ms} ms",
                job_ids=self._withdraw(exc.pairs),
            ) from exc
        except _REDIS_DOWN as exc:
            # The step may have run with its reply lost: the job may stand.
            raise EnqueueFailed(
                f"Redis did not take the job within {self.settings.enqueue_timeout_s:g} s: {exc}",
                job_ids=self._standing([job.job_id]),
            ) from exc
        except redis.ResponseError as exc:  # OOM, NOREPLICAS past the bound: refused at its first write
            raise EnqueueFailed(f"Redis refused the job: {exc}", job_ids=self._standing([job.job_id])) from exc
        return job_id

    def send_bulk(self, messages: Iterable[Mapping[str, Any]], batch_id: str | None = None) -> list[str]:
        """Enqueue many; validated and checked whole before the first write; written in bounded steps."""
        if batch_id is not None and (
            not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > MAX_BATCH_ID_CHARS
        ):
            raise InvalidMessage(
                "invalid_json",
                "batch_id",
                f"must be a string of 1 to {MAX_BATCH_ID_CHARS} characters, not only whitespace",
            )
        batch = batch_id if batch_id is not None else uuid.uuid4().hex
        jobs = self._place(self._bulk_jobs(messages, batch))
        if not jobs:
            return []
        self._check_idempotency(jobs)
        fingerprint = hashlib.sha256("|".join(j.fingerprint + (j.idempotency_key or "") for j in jobs).encode())
        batch_fp = fingerprint.hexdigest()[:32]
        ids: list[str] = []
        for start in range(0, len(jobs), ENQUEUE_STEP):
            step = jobs[start : start + ENQUEUE_STEP]
            try:
                write = partial(self._enqueue_step, step, batch, batch_fp, len(jobs))
                ids += [job_id for job_id, _ in ride_out(write, self.settings.enqueue_timeout_s)]
            except NotReplicated as exc:
                raise EnqueueFailed(
                    f"too few replicas had batch {batch!r} within {self.settings.redis_wait_timeout_ms} ms after "
                    f"{len(ids)} of {len(jobs)} jobs: repeat send_bulk with batch_id={batch!r}, or cancel_batch",
                    job_ids=ids + self._withdraw(exc.pairs),
                    batch_id=batch,
                ) from exc
            except _REDIS_DOWN as exc:
                maybe = ids + [j.job_id for j in step]
                raise EnqueueFailed(
                    f"Redis did not take batch {batch!r} within {self.settings.enqueue_timeout_s:g} s after "
                    f"{len(ids)} of {len(jobs)} jobs: repeat send_bulk with batch_id={batch!r}, or cancel_batch: {exc}",
                    job_ids=self._standing(maybe) if start == 0 else maybe,
                    batch_id=batch,
                ) from exc
            except redis.ResponseError as exc:  # OOM, NOREPLICAS past the bound: refused at its first write
                raise EnqueueFailed(
                    f"Redis refused batch {batch!r} after {len(ids)} of {len(jobs)} jobs: repeat send_bulk with "
                    f"batch_id={batch!r}, or cancel_batch: {exc}",
                    job_ids=ids + self._standing([j.job_id for j in step]),
                    batch_id=batch,
                ) from exc
        return ids

    def _enqueue_step(self, step: list[NewJob], batch: str, fingerprint: str, total: int) -> list[tuple[str, bool]]:
        size = self.settings.bulk_chunk_size
        messages = []
        # Chunks over each run of jobs to send now; scheduled jobs get their messages when they are due.
        for run_start, run_end in _runs([j.send_at is None for j in step]):
            run = [j.job_id for j in step[run_start:run_end]]
            for first, (queue_key, message) in zip(range(0, len(run), size), chunk_messages(self.keys, run, size)):
                messages.append((run_start + first + 1, run_start + min(first + size, len(run)), queue_key, message))
        return self.ledger.enqueue(step, messages, batch_id=batch, batch_fingerprint=fingerprint, batch_total=total)

    def _bulk_jobs(self, messages: Iterable[Mapping[str, Any]], batch: str) -> list[NewJob]:
        jobs: list[NewJob] = []
        keys_seen: dict[str, int] = {}
        for index, message in enumerate(messages):
            try:
                if not isinstance(message, Mapping):
                    raise InvalidMessage("invalid_json", "message", "must be a dict of send_sms's arguments")
                unknown = set(message) - MESSAGE_FIELDS
                if unknown:
                    raise InvalidMessage("invalid_json", sorted(unknown)[0], "is not a message field")
                key = message.get("idempotency_key")
                if isinstance(key, str) and key in keys_seen:
                    raise InvalidMessage(
                        "invalid_json", "idempotency_key", f"repeats the key of message {keys_seen[key]} in this call"
                    )
                jobs.append(
                    self._job(
                        batch_job_id(batch, index),
                        LANE_BULK,
                        message.get("to"),
                        message.get("sender"),
                        message.get("text"),
                        message.get("callback"),
                        key,
                        message.get("expires_in"),
                        message.get("send_at"),
                    )
                )
                if isinstance(key, str):
                    keys_seen[key] = index
            except InvalidMessage as exc:
                raise exc.at(index) from None
        return jobs

    def _place(self, jobs: list[NewJob]) -> list[NewJob]:
        """Jobs with their send_at against the ledger's clock: kept when ahead, dropped when past
        (now); one read of the clock for the whole call, and only when a job has a send_at."""
        if all(j.send_at is None for j in jobs):
            return jobs
        try:
            now = self.ledger.now()
        except _REDIS_DOWN as exc:
            raise EnqueueFailed(f"Redis is unreachable: {exc}") from exc
        placed = []
        for index, job in enumerate(jobs):
            try:
                send_at = check_ahead(job.send_at, now, self.settings.max_schedule_ahead_s)
            except InvalidMessage as exc:
                raise (exc.at(index) if job.lane == LANE_BULK else exc) from None
            placed.append(job if send_at == job.send_at else dataclasses.replace(job, send_at=send_at))
        return placed

    def _check_idempotency(self, jobs: list[NewJob]) -> None:
        """A key held by a different message raises before anything is written (a read-only pass)."""
        keyed = [j for j in jobs if j.idempotency_key]
        try:
            owners = self.ledger.idempotency_owners([j.idempotency_key or "" for j in keyed])
        except (*_REDIS_DOWN, redis.ResponseError) as exc:
            raise EnqueueFailed(f"Redis is unreachable: {exc}") from exc
        for job, owner in zip(keyed, owners):
            if owner is not None:
                other, _, fingerprint = owner.partition("|")
                if fingerprint != job.fingerprint:
                    raise IdempotencyConflict(job.idempotency_key or "", other)

    def _withdraw(self, pairs: list[tuple[str, bool]]) -> list[str]:
        """Withdraw the jobs an unreplicated step created; returns the jobs that may stand: those a worker
        took first, those recorded before this call, and all of them when the withdraw itself reached too
        few replicas (a failover could bring the job back queued)."""
        created = [job_id for job_id, new in pairs if new]
        try:
            withdrawn, replicated = self.ledger.withdraw(created)
        except (*_REDIS_DOWN, redis.ResponseError):
            return [job_id for job_id, _ in pairs]
        if not replicated:
            return [job_id for job_id, _ in pairs]
        gone = set(withdrawn)
        return [job_id for job_id, _ in pairs if job_id not in gone]

    def _standing(self, job_ids: list[str]) -> list[str]:
        """Which of these jobs exist, if Redis answers now; all of them when it does not."""
        try:
            states = self.ledger.states(job_ids)
        except (*_REDIS_DOWN, redis.ResponseError):
            return job_ids
        return [job_id for job_id, state in zip(job_ids, states) if state is not None]

    def _job(
        self,
        job_id: str,
        lane: str,
        to: Any,
        sender: Any,
        text: Any,
        callback: Any,
        idempotency_key: Any,
        expires_in: Any,
        send_at: Any = None,
    ) -> NewJob:
        validate_message(to, sender, text, callback)
        send_at_ts = parse_send_at(send_at)
        if expires_in is None:
            expires_in = self.settings.default_expires_in_s
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or not 0 < expires_in < 10**9:
            raise InvalidMessage("invalid_json", "expires_in", "must be a positive number of seconds")
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200
        ):
            raise InvalidMessage("invalid_json", "idempotency_key", "must be a string of 1 to 200 characters")
        fingerprint = hashlib.sha256(json.dumps([to, sender, text, callback], ensure_ascii=False).encode()).hexdigest()[
            :32
        ]
        forward = bool(callback) and bool(self.settings.webhook_url)
        return NewJob(
            job_id, lane, to, sender, text, callback, forward, idempotency_key, fingerprint, expires_in, send_at_ts
        )

    # --- reads and control -----------------------------------------------------------
    def get_status(self, job_id: str) -> dict[str, Any] | None:
        return self.ledger.get(job_id)

    def cancel(self, job_id: str) -> bool:
        done, _ = self.ledger.operate("cancel", job_id, by="application")
        return done

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        return self.ledger.batch_info(batch_id) if isinstance(batch_id, str) and batch_id else None

    def cancel_batch(self, batch_id: str) -> int:
        """Cancel every member not yet sent; the batch takes no new members afterwards."""
        if not isinstance(batch_id, str) or not batch_id:
            return 0
        return operations.cancel_batch(self.ledger, batch_id, by="application")


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive True flags."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs
