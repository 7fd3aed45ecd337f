"""Per-minute activity for the overview chart, counted from the ledger's events stream.

Reading an hour of `{P}:events` on every page view would read millions of entries at campaign
rates. Instead one console process at a time (a Redis lock) tails the stream, at most STEP_EVENTS
entries per step, and adds them to one small hash per minute (`{P}:console:minute:<m>`, fields =
state names plus `price`) that expires after two hours, and one per hour (`{P}:console:hour:<h>`,
for price today and over 24 h) that expires after two days. A page then reads 60 small hashes.
Counting starts an hour back the first time; the stream's own MAXLEN bounds how far back that is.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import cast

import redis

from config.keys import Keys
from ledger.record import entry_time

STEP_EVENTS = 1000
MINUTE_TTL_S = 2 * 3600
HOUR_TTL_S = 50 * 3600
CHART_STATES = ("sent", "delivered", "not_delivered", "dead")
PRICED_STATES = ("delivered", "not_delivered")
LOCK_TTL_MS = 10_000
log = logging.getLogger(__name__)


class ActivityCounter:
    """Tails the events stream into per-minute and per-hour hashes."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys
        self.owner = f"console-{id(self)}-{time.time()}"

    def step(self) -> int:
        """Count up to STEP_EVENTS new events; returns how many were read (0 when another console counts)."""
        lock = self.keys.lock("console_activity")
        if not self.redis.set(lock, self.owner, nx=True, px=LOCK_TTL_MS) and self.redis.get(lock) != self.owner:
            return 0
        self.redis.pexpire(lock, LOCK_TTL_MS)
        # decode_responses: the cursor, entry ids, field names and values are str.
        cursor = cast(str | None, self.redis.get(self.keys.console_events_cursor))
        cursor = cursor or f"{int((time.time() - 3600) * 1000)}-0"
        rows = cast(
            list[tuple[str, dict[str, str]]],
            self.redis.xrange(self.keys.events, min=f"({cursor}", max="+", count=STEP_EVENTS),
        )
        if not rows:
            return 0
        priced = [fields.get("job", "") for _, fields in rows if fields.get("state") in PRICED_STATES]
        prices = iter(self._prices(priced))
        pipe = self.redis.pipeline(transaction=True)
        touched: set[str] = set()
        for entry_id, fields in rows:
            if fields.get("kind", "state") != "state":
                continue  # a budget warning, not a state change
            ts = entry_time(entry_id)
            minute_key = self.keys.console_minute(int(ts // 60))
            hour = self.keys.console_hour(int(ts // 3600))
            state = fields.get("state", "")
            pipe.hincrby(minute_key, state, 1)
            if state in PRICED_STATES:
                price = next(prices)
                if price:
                    pipe.hincrbyfloat(minute_key, "price", price)
                    pipe.hincrbyfloat(hour, "price", price)
            touched.update((minute_key, hour))
        for key in touched:
            pipe.expire(key, HOUR_TTL_S if ":hour:" in key else MINUTE_TTL_S)
        pipe.set(self.keys.console_events_cursor, rows[-1][0], ex=HOUR_TTL_S)
        pipe.execute()
        return len(rows)

    def _prices(self, job_ids: list[str]) -> list[float]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "price")
        return [float(p or 0) for p in pipe.execute()]

    def minutes(self, now: float | None = None, span: int = 60) -> list[tuple[int, dict[str, float]]]:
        """(epoch minute, counts) for the last `span` minutes, oldest first."""
        current = int((now or time.time()) // 60)
        wanted = list(range(current - span + 1, current + 1))
        pipe = self.redis.pipeline(transaction=False)
        for minute in wanted:
            pipe.hgetall(self.keys.console_minute(minute))
        return [(m, {k: float(v) for k, v in raw.items()}) for m, raw in zip(wanted, pipe.execute())]

    def price(self, now: float | None = None) -> tuple[float, float]:
        """(price since midnight UTC, price over the last 24 hours), from the hourly hashes."""
        now = now or time.time()
        current = int(now // 3600)
        midnight = int((now - now % 86400) // 3600)
        hours = list(range(current - 23, current + 1))
        pipe = self.redis.pipeline(transaction=False)
        for hour in hours:
            pipe.hget(self.keys.console_hour(hour), "price")
        values = [float(v or 0) for v in pipe.execute()]
        today = sum(v for h, v in zip(hours, values) if h >= midnight)
        return round(today, 6), round(sum(values), 6)


class ActivityThread:
    """Runs `ActivityCounter.step` in the background of the console process until stopped."""

    def __init__(self, counter: ActivityCounter, interval_s: float = 1.0):
        self.counter = counter
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-activity", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.counter.step() == STEP_EVENTS
            except redis.RedisError as exc:
                log.warning("console activity counter: %s", exc)
                busy = False
            if not busy:
                self._stop.wait(self.interval_s)
