"""The outcome record as users see it: contract fields, ISO 8601 UTC times, typed numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.schema import (
    FINAL_STATES,
    STATES,
    TIMELINE_FIELD,
    TIMELINE_HEAD,
    TIMELINE_NAMES,
    TIMELINE_TAIL,
    TIMELINE_TIMES,
)

__all__ = ["FINAL_STATES", "STATES", "iso", "history", "timeline", "timeline_detail", "to_record"]

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


_TIMELINE_INTS = ("n", "http", "ms")
_TIMELINE_LONG = {short: name for name, short in TIMELINE_NAMES.items()}


def timeline(raw: dict[str, str]) -> list[dict[str, Any]]:
    """The job's timeline from its hash, oldest first: entries with `at` (ISO 8601 UTC) and `event`;
    entries left out between the first and the last ones show as one `omitted` entry with a `count`."""
    written = int(raw.get("timeline_n") or 0)
    base = float(raw.get("created_ts") or 0)
    kept = min(written, TIMELINE_HEAD + TIMELINE_TAIL)
    omitted = written - kept
    out: list[dict[str, Any]] = []
    for k in [*range(min(written, TIMELINE_HEAD)), *range(TIMELINE_HEAD + omitted, written)]:
        slot = k if k < TIMELINE_HEAD else TIMELINE_HEAD + (k - TIMELINE_HEAD) % TIMELINE_TAIL
        line = raw.get(f"{TIMELINE_FIELD}{slot}")
        if k == TIMELINE_HEAD + omitted and omitted:
            out.append({"at": out[-1]["at"] if out else iso(base), "event": "omitted", "count": omitted})
        if line:
            out.append(_entry(line, base))
    return out


def _entry(line: str, base: float) -> dict[str, Any]:
    ms, event, *fields = line.split("|")
    entry: dict[str, Any] = {"at": _at(base, ms), "event": event}
    for field in fields:
        short, _, value = field.partition("=")
        name = _TIMELINE_LONG.get(short, short)
        if name in TIMELINE_TIMES:
            entry[name] = _at(base, value)
        elif name in _TIMELINE_INTS and value.lstrip("-").isdigit():
            entry[name] = int(value)
        else:
            entry[name] = value
    return entry


def _at(base: float, ms: str) -> str | None:
    return iso(base + int(ms) / 1000) if ms.lstrip("-").isdigit() else None


def timeline_detail(entry: dict[str, Any]) -> str:
    """One timeline entry's fields besides `at`, `event` and `state`, as one line for people."""
    parts = []
    for name, value in entry.items():
        if name in ("at", "event", "state"):
            continue
        if name == "http":
            parts.append(f"HTTP {value}")
        elif name == "ms":
            parts.append(f"{value} ms")
        elif name == "n":
            parts.append(f"attempt {value}")
        elif name == "count":
            parts.append(f"{value} entries not kept")
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


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
        "redacted": raw.get("redacted") == "1",
        "timeline": timeline(raw),
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
