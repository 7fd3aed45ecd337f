"""The figures of `cosmos-sms stats` and `/metrics`, read from the ledger's counters (never a scan)."""

from __future__ import annotations

import json
import time
from typing import Any

from config.keys import LANES
from ledger.budget import Budget, BudgetDays, to_usd
from ledger.clock import from_time_reply
from ledger.record import iso
from ledger.schema import COUNTERS, PAUSE_SCOPES, STATES
from ledger.store import Ledger


def paused(pause: dict[str, str], budget: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The pause in force, or None. The widest first: the account's (COSMOS refused us), an operator's
    of all sending, the budget's (every lane, until the budget day ends), then an operator's of a lane."""
    if "account" in pause:
        info = json.loads(pause["account"])
        return {"kind": "account", "reason": info.get("reason"), "since": info.get("ts"), "lanes": list(LANES)}
    scopes = [scope for scope in PAUSE_SCOPES if f"op:{scope}" in pause]
    if budget and "all" not in scopes:
        return budget
    if not scopes:
        return None
    info = json.loads(pause[f"op:{scopes[0]}"])
    lanes = list(LANES) if "all" in scopes else scopes
    return {
        "kind": "operator",
        "reason": info.get("reason"),
        "by": info.get("by"),
        "since": info.get("ts"),
        "lanes": lanes,
    }


def budget_pause(budget: Budget, spend: dict[str, str], days: BudgetDays) -> dict[str, Any] | None:
    """The budget's pause today (the scripts' rule), or None."""
    reason = budget.pause_reason(spend)
    if reason is None:
        return None
    cap = to_usd(budget.price_cap) if reason == "daily_budget" else budget.message_cap
    return {
        "kind": "budget",
        "reason": reason,
        "since": float(spend.get("warned_100") or days.start),
        "until": iso(days.end),
        "cap": cap,
        "lanes": list(LANES),
    }


def stats(ledger: Ledger, receipt_overdue_s: float = 3600.0) -> dict[str, Any]:
    """Counts per state and dead reason, sets' sizes, totals, breaker and pause, in one round trip."""
    k = ledger.keys
    now = time.time()
    days = ledger.budget.days()
    pipe = ledger.redis.pipeline(transaction=False)
    pipe.hgetall(k.budget_day(days.start))
    pipe.hgetall(k.counters)
    pipe.hgetall(k.breaker)
    pipe.hgetall(k.pause)
    pipe.zcard(k.dead)
    pipe.zcard(k.held)
    for lane in LANES:
        pipe.zcard(k.retry(lane))
        pipe.llen(k.broker_queue_key(lane))
    for lane in LANES:
        pipe.zcard(k.scheduled(lane))
        pipe.zrange(k.scheduled(lane), 0, 0, withscores=True)
    pipe.zcard(k.quiet)
    pipe.time()
    pipe.zcount(k.awaiting, "-inf", time.time() - receipt_overdue_s)
    pipe.zrange(k.awaiting, 0, 0, withscores=True)
    pipe.zcount(k.archive_pending, "-inf", now)  # `sent` records wait here ahead of their due time too
    pipe.zrangebyscore(k.archive_pending, "-inf", now, start=0, num=1, withscores=True)
    pipe.hget(k.archiver_status, "last_error")
    spend, counters, breaker, pause, dead_size, held_size, *rest = pipe.execute()
    rest, (archive_backlog, oldest_unarchived, archive_error) = rest[:-3], rest[-3:]
    lanes, rest = rest[: 2 * len(LANES)], rest[2 * len(LANES) :]
    scheduled, (quiet_size, time_reply, overdue, oldest) = rest[: 2 * len(LANES)], rest[2 * len(LANES) :]
    now = from_time_reply(time_reply, ledger.settings)
    quiet_until = ledger.quiet_until(now)
    next_at = min((first[0][1] for first in scheduled[1::2] if first), default=None)
    # The backlog a worker could take now: queued jobs, less those waiting for send_at or quiet hours.
    waiting_apart = {lane: scheduled[2 * i] + (quiet_size if lane == "bulk" else 0) for i, lane in enumerate(LANES)}
    backlog = {lane: max(0, int(counters.get(f"lane:{lane}:queued", 0)) - waiting_apart[lane]) for lane in LANES}
    figures = {name: int(float(counters.get(name, 0))) for name in COUNTERS if name != "total_price"}
    return {
        "states": {s: int(counters.get(f"state:{s}", 0)) for s in STATES},
        "states_by_lane": {lane: {s: int(counters.get(f"lane:{lane}:{s}", 0)) for s in STATES} for lane in LANES},
        "dead_reasons": {
            key.split(":", 1)[1]: int(v) for key, v in counters.items() if key.startswith("dead:") and int(v) > 0
        },
        "dead_letter_size": dead_size,
        "held_size": held_size,
        "retry_due_size": {lane: lanes[2 * i] for i, lane in enumerate(LANES)},
        "queue_depth": {lane: lanes[2 * i + 1] for i, lane in enumerate(LANES)},
        "backlog": backlog,
        "total_price": round(float(counters.get("total_price", 0)), 6),
        **figures,
        "receipts_overdue": overdue,
        "oldest_awaiting_receipt_s": round(time.time() - oldest[0][1], 1) if oldest else None,
        "breaker": {
            "state": breaker.get("state", "closed"),
            "consecutive_failures": int(breaker.get("failures", 0)),
            "times_opened": int(counters.get("breaker_opened", 0)),
        },
        "paused": paused(pause, budget_pause(ledger.budget, spend, days)),
        **ledger.budget.figures(spend, days),
        "archive": {
            "backlog": archive_backlog,
            "oldest_s": round(max(0.0, time.time() - oldest_unarchived[0][1]), 1) if oldest_unarchived else None,
            "last_error": archive_error or None,
        },
        "scheduled": {"waiting": sum(scheduled[0::2]), "next_at": iso(next_at)},
        "quiet_hours": None if quiet_until is None else {"until": iso(quiet_until), "waiting": quiet_size},
        "transport": ledger.settings.transport,
        **smpp_figures(ledger, counters),
    }


def smpp_figures(ledger: Ledger, counters: dict[str, str]) -> dict[str, Any]:
    """`smpp` on a route that includes SMPP: binds held now (fleet-wide), jobs in flight, receipts kept."""
    if ledger.settings.transport != "smpp":
        return {}
    return {
        "smpp": {
            "binds": ledger.bind_slot("count", ""),
            "max_binds": ledger.settings.smpp_max_binds,
            "window": ledger.settings.smpp_window,
            "in_flight": int(counters.get("state:sending", 0)),
            "receipts_kept": ledger.smpp_receipts_kept(),
        }
    }
