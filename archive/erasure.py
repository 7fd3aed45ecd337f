"""Erasure of one number (a person's right to erasure): its records redacted in Redis and in the
archive, in bounded steps, one-way."""

from __future__ import annotations

from archive.redaction import redacted_fields
from archive.store import Archive
from ledger.schema import STEP
from ledger.store import Ledger


def forget_in_redis(ledger: Ledger, number: str) -> int:
    """Redact every live record to `number`, a page of its index at a time; returns how many."""
    index, done = ledger.keys.by_number(number), 0
    while True:
        ids = [str(m) for m in ledger.redis.zrange(index, 0, STEP - 1)]
        if not ids:
            return done
        for job_id, raw in zip(ids, ledger.raw_many(ids)):
            if not raw or raw.get("to") != number:
                ledger.redis.zrem(index, job_id)  # a stale entry: nothing to redact
                continue
            values = redacted_fields(raw.get("to"), raw.get("text"), raw.get("idem"), raw.get("callback"))
            done += ledger.redact(
                job_id,
                number,
                values["to"] or "",
                values["text"] or "",
                values["idempotency_key"] or "",
                values["callback"] or "",
            )


def forget_in_archive(archive: Archive, number: str) -> int:
    done = 0
    while step := archive.redact_number(number):
        done += step
    return done
