"""The outcome record as users see it: contract fields, ISO 8601 UTC times, typed numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.schema import FINAL_STATES, STATES

__all__ = ["FINAL_STATES", "STATES", "iso", "history", "to_record"]

_INTS = ("attempts", "ambiguous_resends", "extra_sends")
_TIMES = {
    "created_ts": "created_at",
    "updated_ts": "updated_at",
    "expires_ts": "expires_at",
    "sent_ts": "sent_at",
    "delivered_ts": "delivered_at",
    "due_ts": "next_attempt_at",
    "send_at": "send_at",
}


def iso(ts: float | str | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a `Z`, millisecond precision."""
    if ts in (None, ""):
        return None
    moment = datetime.fromtimestamp(float(ts), tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history(raw: str | None) -> list[dict[str, Any]]:
    """The compact attempt history ("status/http/ms/route/provider_status;...") as a list of dicts."""
    out = []
    for entry in (raw or "").split(";"):
        if entry:
            status, http, ms, route, provider = (entry.split("/") + ["", "", "", ""])[:5]
            out.append(
                {
                    "status": status,
                    "http": int(http) if http.isdigit() else None,
                    "latency_ms": int(ms) if ms.isdigit() else None,
                    "route": route or "http",
                    "provider_status": provider or (http if http.isdigit() and http != "0" else None),
                }
            )
    return out


def to_record(job_id: str, raw: dict[str, str]) -> dict[str, Any] | None:
    """The contract's outcome record from a job's ledger hash (None for a missing job); the id is
    the key's, not stored in the hash."""
    if not raw:
        return None
    record = {
        "job_id": job_id,
        "state": raw.get("state"),
        "lane": raw.get("lane"),
        "batch_id": raw.get("batch"),
        "to": raw.get("to"),
        "from": raw.get("from"),
        "callback": raw.get("callback"),
        "idempotency_key": raw.get("idem") or None,
        "message_id": raw.get("message_id"),
        "price": float(raw["price"]) if raw.get("price") not in (None, "") else None,
        "last_error": raw.get("last_error") or None,
        "dead_reason": raw.get("dead_reason") or None,
        "delivery_status": raw.get("delivery_status"),
        "receipt_timestamp": raw.get("receipt_timestamp"),
        "history": history(raw.get("history")),
        "late": raw.get("late") == "1",
        "route": raw.get("route") or None,
        "waiting_for": raw.get("waiting") or None,
    }
    for name in _INTS:
        record[name] = int(raw.get(name) or 0)
    for stored, shown in _TIMES.items():
        record[shown] = iso(raw.get(stored))
    return record


def entry_time(entry_id: str) -> float:
    """When an events stream entry was written (epoch seconds): its id is `<ms>-<seq>`, Redis's clock."""
    return int(entry_id.split("-", 1)[0]) / 1000
