"""What an on-call engineer must see on every page: no worker alive, or sending paused."""

from __future__ import annotations

from typing import Any

import redis

from console.context import Console
from ledger.processes import LOST_AFTER_BEATS, Heartbeats, alive_count
from ledger.record import iso


def pauses(console: Console) -> list[dict[str, Any]]:
    """Every pause in force as kind (operator, account, budget, ...), lane, reason, since and by."""
    out = []
    for field, value in console.controls.pauses().items():
        kind, _, lane = field.partition(":")
        out.append(
            {
                "kind": "operator" if kind == "op" else kind,
                "lane": lane or "all",
                "reason": value.get("reason") or "",
                "since": iso(value.get("ts")),
                "by": value.get("by") or ("COSMOS" if kind == "account" else ""),
            }
        )
    return out


def banners(console: Console) -> list[str]:
    """One line per condition; empty when workers are alive and nothing is paused."""
    try:
        seen = Heartbeats(console.redis, console.keys).seen()
        paused = pauses(console)
    except redis.RedisError as exc:
        return [f"Redis is not reachable ({exc}); check REDIS_URL."]
    lines = []
    if not seen:
        lines.append("No worker process has been seen in the last 10 minutes: nothing is being sent.")
    elif not alive_count(seen):
        lines.append(
            f"No worker process has been heard from for {LOST_AFTER_BEATS} heartbeats: nothing is being sent "
            "(see Processes)."
        )
    for p in paused:
        by = f" by {p['by']}" if p["by"] else ""
        lines.append(f"Sending paused ({p['kind']}, lane {p['lane']}): {p['reason']}, since {p['since']}{by}.")
    return lines
