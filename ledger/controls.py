"""Operator controls of sending: pause and resume, breaker reset, and the audit stream of operator actions.

An operator's pause is a field of `{P}:pause` (`op:all`, `op:single`, `op:bulk`) holding JSON
{"reason", "by", "ts"}; the ledger's `begin` refuses to send while one applies to a job's lane.
Only an operator lifts it (a probe lifts the `account` pause alone). Every action lands in the
audit stream, capped at about AUDIT_MAXLEN entries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from config.keys import LANES, Keys
from ledger.schema import PAUSE_SCOPES

AUDIT_MAXLEN = 100_000
"""Entries the audit stream keeps (approximately: XADD MAXLEN ~)."""


class ControlError(ValueError):
    """A refused control request; the message names the field."""


@dataclass(frozen=True)
class AuditEntry:
    """One operator action as the console shows it."""

    entry_id: str
    ts: float
    user: str
    action: str
    target: str
    count: int
    detail: str


def _scope(lane: str | None) -> str:
    scope = lane or "all"
    if scope not in PAUSE_SCOPES:
        raise ControlError(f"lane: must be one of {', '.join(LANES)} (or none for all sending)")
    return scope


class Controls:
    """Pause, resume, breaker reset and audit for one prefix."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys

    # --- pause -------------------------------------------------------------------------
    def pause(self, lane: str | None, reason: str, by: str) -> str:
        """Pause one lane (or all sending); returns the field written."""
        field = f"op:{_scope(lane)}"
        value = json.dumps({"reason": reason or "paused by an operator", "by": by, "ts": time.time()})
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.pause, field, value)
        self._audit_cmd(pipe, by, "pause", lane or "all", 1, reason)
        pipe.execute()
        return field

    def resume(self, lane: str | None, by: str) -> bool:
        """Lift an operator's pause of one lane (or of all sending); True when one was there."""
        field = f"op:{_scope(lane)}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.pause, field)
        self._audit_cmd(pipe, by, "resume", lane or "all", 1, "")
        removed, _ = pipe.execute()
        return bool(removed)

    def pauses(self) -> dict[str, dict[str, Any]]:
        """Every pause in force, operator's and account's: field -> its JSON object."""
        out: dict[str, dict[str, Any]] = {}
        # The client decodes responses: field names and values are str.
        raw_pauses = cast("dict[str, str]", self.redis.hgetall(self.keys.pause))
        for field, raw in sorted(raw_pauses.items()):
            if field != "account" and not field.startswith("op:"):
                continue  # bookkeeping of the account pause's probes, not a pause
            try:
                value = json.loads(raw)
            except ValueError:
                value = {"reason": raw}
            out[field] = value if isinstance(value, dict) else {"reason": str(value)}
        return out

    # --- breaker -----------------------------------------------------------------------
    def reset_breaker(self, by: str) -> None:
        """Close the circuit breaker now (the next attempt is an ordinary one)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.breaker)
        self._audit_cmd(pipe, by, "reset_breaker", "breaker", 1, "")
        pipe.execute()

    # --- audit -------------------------------------------------------------------------
    def audit(self, user: str, action: str, target: str, count: int = 1, detail: str = "") -> str:
        """Record one operator action; returns its stream id."""
        entry_id = self.redis.xadd(
            self.keys.audit,
            _fields(user, action, target, count, detail),  # type: ignore[arg-type]
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )
        return str(entry_id)

    def _audit_cmd(
        self, pipe: redis.client.Pipeline, user: str, action: str, target: str, count: int, detail: str
    ) -> None:
        pipe.xadd(
            self.keys.audit,
            _fields(user, action, target, count, detail),  # type: ignore[arg-type]
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )

    def audit_page(self, before: str | None = None, limit: int = 50) -> tuple[list[AuditEntry], str | None]:
        """Newest first, `limit` entries older than the stream id `before`; returns (entries, next cursor)."""
        end = f"({before}" if before else "+"
        rows = cast(
            "list[tuple[str, dict[str, str]]]", self.redis.xrevrange(self.keys.audit, max=end, min="-", count=limit + 1)
        )
        entries = [_entry(entry_id, fields) for entry_id, fields in rows[:limit]]
        more = len(rows) > limit
        return entries, (entries[-1].entry_id if more and entries else None)


def _fields(user: str, action: str, target: str, count: int, detail: str) -> dict[str, str]:
    return {
        "ts": f"{time.time():.3f}",
        "user": user,
        "action": action,
        "target": target[:200],
        "count": str(int(count)),
        "detail": (detail or "")[:300],
    }


def _entry(entry_id: str, fields: dict[str, str]) -> AuditEntry:
    return AuditEntry(
        entry_id,
        float(fields.get("ts") or 0),
        fields.get("user", ""),
        fields.get("action", ""),
        fields.get("target", ""),
        int(fields.get("count") or 0),
        fields.get("detail", ""),
    )
