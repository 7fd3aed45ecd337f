"""A ledger hash as an archive row, and an archive row as the contract's outcome record."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ledger.record import history, iso

_FLOATS = ("created_ts", "updated_ts", "expires_ts", "sent_ts", "delivered_ts")
_INTS = ("attempts", "ambiguous_resends", "extra_sends")
_SHOWN_TIMES = {
    "created_ts": "created_at",
    "updated_ts": "updated_at",
    "expires_ts": "expires_at",
    "sent_ts": "sent_at",
    "delivered_ts": "delivered_at",
    "next_attempt_ts": "next_attempt_at",
}
RECORD_FIELDS = (
    "job_id",
    "state",
    "lane",
    "batch_id",
    "to",
    "from",
    "callback",
    "idempotency_key",
    "message_id",
    "price",
    "last_error",
    "dead_reason",
    "delivery_status",
    "receipt_timestamp",
    "history",
    "late",
    "redacted",
    "attempts",
    "ambiguous_resends",
    "extra_sends",
    "created_at",
    "updated_at",
    "expires_at",
    "sent_at",
    "delivered_at",
    "next_attempt_at",
)
"""The outcome record's fields, in the order `export` writes them (then `text`, `send_at`, `route`)."""


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def row_from_hash(prefix: str, job_id: str, raw: dict[str, str], now: float) -> dict[str, Any]:
    """The archive row of one ledger hash (see ledger/schema.py JOB_FIELDS)."""
    row: dict[str, Any] = {
        "prefix": prefix,
        "job_id": job_id,
        "state": raw.get("state") or "",
        "lane": raw.get("lane"),
        "batch_id": raw.get("batch") or None,
        "to": raw.get("to"),
        "sender": raw.get("from"),
        "text": raw.get("text"),
        "callback": raw.get("callback") or None,
        "idempotency_key": raw.get("idem") or None,
        "message_id": raw.get("message_id") or None,
        "price": _float(raw.get("price")),
        "last_error": raw.get("last_error") or None,
        "dead_reason": raw.get("dead_reason") or None,
        "delivery_status": raw.get("delivery_status") or None,
        "receipt_timestamp": raw.get("receipt_timestamp") or None,
        "history": raw.get("history") or None,
        "late": raw.get("late") == "1",
        "next_attempt_ts": _float(raw.get("due_ts")),
        "send_at": _float(raw.get("send_at_ts") or raw.get("send_at")),
        "route": raw.get("route") or None,
        "redacted": raw.get("redacted") == "1",
        "archived_ts": now,
    }
    for name in _FLOATS:
        row[name] = _float(raw.get(name))
    if row["created_ts"] is None:
        row["created_ts"] = row["updated_ts"] or now
    for name in _INTS:
        row[name] = int(raw.get(name) or 0)
    return row


def record_from_row(row: Any) -> dict[str, Any]:
    """The contract's outcome record (as `ledger.record.to_record` gives it) from an archive row."""
    m = row._mapping if hasattr(row, "_mapping") else row
    record: dict[str, Any] = {
        "job_id": m["job_id"],
        "state": m["state"],
        "lane": m["lane"],
        "batch_id": m["batch_id"],
        "to": m["to"],
        "from": m["sender"],
        "callback": m["callback"],
        "idempotency_key": m["idempotency_key"],
        "message_id": m["message_id"],
        "price": m["price"],
        "last_error": m["last_error"],
        "dead_reason": m["dead_reason"],
        "delivery_status": m["delivery_status"],
        "receipt_timestamp": m["receipt_timestamp"],
        "history": history(m["history"]),
        "late": bool(m["late"]),
        "redacted": bool(m["redacted"]),
    }
    for name in _INTS:
        record[name] = int(m[name] or 0)
    for stored, shown in _SHOWN_TIMES.items():
        record[shown] = iso(m[stored])
    return record


@lru_cache(maxsize=4096)
def _history_json(raw: str | None) -> str:
    """An attempt history as export writes it; the same few histories repeat over millions of rows."""
    return json.dumps(history(raw))


def export_row(row: Any) -> list[Any]:
    """One export line from an archive row: the outcome record's fields in RECORD_FIELDS order (as
    `record_from_row` gives them, history as JSON), then text, send_at and route. Built directly:
    export writes millions of these."""
    m = row._mapping
    return [
        m["job_id"],
        m["state"],
        m["lane"],
        m["batch_id"],
        m["to"],
        m["sender"],
        m["callback"],
        m["idempotency_key"],
        m["message_id"],
        m["price"],
        m["last_error"],
        m["dead_reason"],
        m["delivery_status"],
        m["receipt_timestamp"],
        _history_json(m["history"]),
        bool(m["late"]),
        bool(m["redacted"]),
        int(m["attempts"] or 0),
        int(m["ambiguous_resends"] or 0),
        int(m["extra_sends"] or 0),
        *(iso(m[stored]) for stored in _SHOWN_TIMES),
        m["text"],
        iso(m["send_at"]),
        m["route"],
    ]


EXPORT_COLUMNS = (*RECORD_FIELDS, "text", "send_at", "route")
