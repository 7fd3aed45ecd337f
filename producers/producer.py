"""`SmsProducer`: validate, then record jobs and their broker messages in one atomic step."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from functools import cached_property
from typing import Any, Iterable, Mapping

import redis
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from config.keys import LANE_BULK, LANE_SINGLE, Keys
from config.redis_client import redis_client
from config.settings import Settings
from cosmos_api.errors import EnqueueFailed, InvalidMessage
from cosmos_api.rules import validate_message
from ledger.outbox import chunk_messages, single_message
from ledger.store import Ledger, NewJob

MESSAGE_FIELDS = frozenset({"to", "sender", "text", "callback", "idempotency_key", "expires_in"})


class SmsProducer:
    """Enqueues jobs on one Redis; thread-safe; cheap to keep for the life of the process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)

    @cached_property
    def redis(self) -> redis.Redis:
        # The producer role's short timeouts: a dead Redis must turn into EnqueueFailed, not a hang.
        return redis_client(self.settings, "producer")

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings)

    # --- enqueue ---------------------------------------------------------------------
    def send_sms(self, to: str, sender: str, text: str, callback: str | None = None,
                 idempotency_key: str | None = None, expires_in: int | None = None) -> str:
        job = self._job(LANE_SINGLE, to, sender, text, callback, idempotency_key, expires_in)
        [(job_id, _)] = self._record([job], [single_message(self.keys, LANE_SINGLE, job.job_id)])
        return job_id

    def send_bulk(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        jobs = []
        for index, message in enumerate(messages):
            try:
                if not isinstance(message, Mapping):
                    raise InvalidMessage("invalid_json", "message", "must be a dict of send_sms's arguments")
                unknown = set(message) - MESSAGE_FIELDS
                if unknown:
                    raise InvalidMessage("invalid_json", sorted(unknown)[0], "is not a message field")
                jobs.append(self._job(LANE_BULK, message.get("to"), message.get("sender"), message.get("text"),
                                      message.get("callback"), message.get("idempotency_key"),
                                      message.get("expires_in")))
            except InvalidMessage as exc:
                raise exc.at(index) from None
        if not jobs:
            return []
        messages = chunk_messages(self.keys, [job.job_id for job in jobs], self.settings.bulk_chunk_size)
        return [job_id for job_id, _ in self._record(jobs, messages)]

    def _job(self, lane, to, sender, text, callback, idempotency_key, expires_in) -> NewJob:
        validate_message(to, sender, text, callback)
        if expires_in is None:
            expires_in = self.settings.default_expires_in_s
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or not 0 < expires_in < 10**9:
            raise InvalidMessage("invalid_json", "expires_in", "must be a positive number of seconds")
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
            raise InvalidMessage("invalid_json", "idempotency_key", "must be a string of 1 to 200 characters")
        fingerprint = hashlib.sha256(
            json.dumps([to, sender, text, callback], ensure_ascii=False).encode()
        ).hexdigest()[:32]
        return NewJob(uuid.uuid4().hex, lane, to, sender, text, callback, idempotency_key, fingerprint, expires_in)

    def _record(self, jobs: list[NewJob], messages: list[tuple[str, str]]) -> list[tuple[str, bool]]:
        """Write records and broker messages, retrying within the enqueue bound."""
        started = time.monotonic()
        try:
            return self.ledger.enqueue(jobs, messages)  # the usual case, without tenacity's cost
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        retrying = Retrying(
            stop=stop_after_delay(max(0.0, self.settings.enqueue_timeout_s - (time.monotonic() - started))),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
            reraise=True,
        )
        try:
            return retrying(self.ledger.enqueue, jobs, messages)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise EnqueueFailed(f"Redis did not take the job within {self.settings.enqueue_timeout_s:g} s: {exc}") from None

    # --- reads and control -----------------------------------------------------------
    def get_status(self, job_id: str) -> dict | None:
        return self.ledger.get(job_id)

    def cancel(self, job_id: str) -> bool:
        done, _ = self.ledger.operate("cancel", job_id)
        return done
