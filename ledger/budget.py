"""Budget days: their epoch boundaries in the budget's time zone, and today's spend as the ledger counts it.

A budget day runs from one midnight to the next in `COSMOS_BUDGET_TZ`, so it lasts 23, 24 or 25 hours
around a DST change. Lua has no time zones: Python computes the boundaries with `zoneinfo` and passes
the scripts three consecutive days (yesterday, today, tomorrow), which covers any skew between this
host's clock and Redis TIME under a day. The count itself lives in one ledger-owned hash per day,
`{P}:budget:<day start>`, written by the state moves that record an acceptance.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.settings import Settings
from ledger.record import iso

MICROS = 1_000_000
"""Prices are counted in integer micro-dollars: a day of millions of sends never drifts."""


def budget_day(ts: float, zone: ZoneInfo) -> tuple[int, int]:
    """(start, end) epoch seconds of the budget day holding `ts`: midnight to midnight in `zone`."""
    local_date = datetime.fromtimestamp(ts, zone).date()
    return _midnight(local_date, zone), _midnight(local_date + timedelta(days=1), zone)


def _midnight(day: Any, zone: ZoneInfo) -> int:
    # A midnight that a DST change skips (fold 0 reads it with the offset before the change) maps to
    # the first instant that does exist: the day still starts where the previous one ended.
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def to_micros(usd: float) -> int:
    return int(round(usd * MICROS))


def to_usd(micros: int | str | None) -> float:
    return round(int(micros or 0) / MICROS, 6)


@dataclass(frozen=True)
class BudgetDays:
    """Yesterday's start, today's start and end, tomorrow's end: the boundaries the scripts receive."""

    bounds: tuple[int, int, int, int]

    @property
    def start(self) -> int:
        return self.bounds[1]

    @property
    def end(self) -> int:
        return self.bounds[2]


class Budget:
    """The caps and time zone of one deployment, and the budget days around the ledger's now."""

    def __init__(self, settings: Settings):
        self.zone = ZoneInfo(settings.budget_tz)
        self.message_cap = settings.daily_message_cap
        self.price_cap = to_micros(settings.daily_budget)
        self.clock_offset_s = settings.clock_offset_s
        self._days: BudgetDays | None = None

    @property
    def capped(self) -> bool:
        return self.message_cap > 0 or self.price_cap > 0

    def days(self, now: float | None = None) -> BudgetDays:
        """The days around `now` (default: this host's clock plus the test offset, cached until today ends)."""
        if now is not None:
            return self._around(now)
        now = time.time() + self.clock_offset_s
        if self._days is None or not self._days.start <= now < self._days.end:
            self._days = self._around(now)
        return self._days

    def _around(self, now: float) -> BudgetDays:
        start, end = budget_day(now, self.zone)
        previous, _ = budget_day(start - 1, self.zone)
        _, following = budget_day(end, self.zone)
        return BudgetDays((previous, start, end, following))

    def script_args(self, days: BudgetDays) -> dict[str, int]:
        """The budget's share of every script's common arguments (ledger.schema BUDGET_ARGS)."""
        yesterday, today, tomorrow, after = days.bounds
        return {
            "budget_yesterday": yesterday,
            "budget_today": today,
            "budget_tomorrow": tomorrow,
            "budget_after": after,
            "message_cap": self.message_cap,
            "price_cap": self.price_cap,
        }

    def pause_reason(self, spend: dict[str, str]) -> str | None:
        """Why sending is paused by the budget today, from the day's hash, or None (the scripts' rule)."""
        if "resumed" in spend:
            return None
        if self.price_cap > 0 and int(spend.get("price") or 0) >= self.price_cap:
            return "daily_budget"
        if self.message_cap > 0 and int(spend.get("messages") or 0) >= self.message_cap:
            return "daily_message_cap"
        return None

    def figures(self, spend: dict[str, str], days: BudgetDays) -> dict[str, Any]:
        """`spend_today` and `budget` of `stats --json` from today's hash."""
        resumed = json.loads(spend["resumed"]) if "resumed" in spend else None
        paused = self.pause_reason(spend)
        return {
            "spend_today": {
                "messages": int(spend.get("messages") or 0),
                "price": to_usd(spend.get("price")),
                "day": datetime.fromtimestamp(days.start, self.zone).date().isoformat(),
            },
            "budget": {
                "daily_budget": to_usd(self.price_cap),
                "daily_message_cap": self.message_cap,
                "tz": self.zone.key,
                "day_start": iso(days.start),
                "day_end": iso(days.end),
                "resumed": resumed,
                "paused": paused,
                # When the cap was reached (a cap lowered during the day: since the day began).
                "paused_since": float(spend.get("warned_100") or days.start) if paused else None,
            },
        }
