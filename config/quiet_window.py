"""Quiet hours as epoch boundaries: a local `HH:MM-HH:MM` window each day, in an IANA time zone.

The scripts compare epoch seconds only; wall-clock rules (a window across midnight, a DST change
inside it) are resolved here with zoneinfo and passed to them as arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NO_WINDOWS = (0.0, 0.0, 0.0, 0.0)
"""What the scripts get when there are no quiet hours: two empty windows."""
LOOK_BACK_S = 60.0
"""A window that ended this recently is still passed on, so a caller's clock a little ahead of
Redis's does not skip the window the scripts are still in."""


def parse_window(spec: str) -> tuple[time, time]:
    """(start, end) of `HH:MM-HH:MM`; ValueError naming the problem otherwise."""
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", spec.strip())
    if not match:
        raise ValueError(f"{spec!r} is not HH:MM-HH:MM (24-hour local times, e.g. 21:00-08:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"{spec!r} starts and ends at the same time")
    return start, end


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str | None, zone: str) -> QuietHours | None:
        """The window of `COSMOS_QUIET_HOURS` in `COSMOS_QUIET_HOURS_TZ`, or None when unset."""
        if not spec:
            return None
        start, end = parse_window(spec)
        return cls(start, end, ZoneInfo(zone))

    def window_of(self, day: date) -> tuple[float, float]:
        """The window that starts on local `day`, as epoch seconds; it ends the next day when it
        crosses midnight. Wall-clock times: a DST change inside makes it an hour shorter or longer."""
        start = datetime.combine(day, self.start, tzinfo=self.zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        end = datetime.combine(end_day, self.end, tzinfo=self.zone)
        return start.timestamp(), end.timestamp()

    def windows(self, now: float) -> tuple[float, float, float, float]:
        """The window in force at `now` (or the next one) and the one after it: (start, end) twice."""
        today = datetime.fromtimestamp(now, self.zone).date()
        found = [
            w for w in (self.window_of(today + timedelta(days=d)) for d in (-1, 0, 1, 2)) if w[1] > now - LOOK_BACK_S
        ]
        (s1, e1), (s2, e2) = found[:2]
        return s1, e1, s2, e2

    def until(self, now: float) -> float | None:
        """When the window in force at `now` ends, or None outside every window."""
        s1, e1, s2, e2 = self.windows(now)
        for start, end in ((s1, e1), (s2, e2)):
            if start <= now < end:
                return end
        return None
