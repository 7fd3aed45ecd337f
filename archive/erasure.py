"""Erasure of one number (a person's right to erasure): its records redacted in Redis and in the
archive, in bounded steps, one-way."""

from __future__ import annotations

from archive.redaction import redacted_fields
from archive.store import Archive
from ledger.schema import STEP
from ledger.store import Ledger


def forget_in_redis(ledger: Ledger, number: str) -> int:
    """Redact every live record to `number`, a page of its index at a time; returns how many."""
    done = 0
    while ids := ledger.by_number_page(number, STEP):
        for job_id, raw in zip(ids, ledger.raw_many(ids)):
            values = redacted_fields(raw.get("to"), raw.get("text"), raw.get("idem"), raw.get("callback"))
            redacted = {
                "to": values["to"] or "",
                "text": values["text"] or "",
                "idem": values["idempotency_key"] or "",
                "callback": values["callback"] or "",
            }
            done += ledger.redact(job_id, number, redacted)  # also drops the entry, stale or not
    return done


def forget_inbound(ledger: Ledger, number: str) -> int:
    """Erase the inbound messages `number` sent (Redis only: they are not archived), a step at a time."""
    done, cursor = 0, "-"
    while True:
        after, gone = ledger.forget_inbound_step(number, cursor)
        done += gone
        if after is None:
            return done
        cursor = after


def forget_in_archive(archive: Archive, number: str) -> int:
    done = 0
    while step := archive.redact_number(number):
        done += step
    return done
