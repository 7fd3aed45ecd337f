"""The ledger's clock, for Python code that computes times the scripts compare with their own.

The scripts read Redis TIME (one clock for every machine) plus `COSMOS_TEST_CLOCK_OFFSET_S`; Python
that needs "now" in the same terms (a time-of-day window's epoch boundaries) asks here, never the host.
"""

from __future__ import annotations

import time

import redis

from config.settings import Settings


def ledger_now(client: redis.Redis, settings: Settings) -> float:
    """Epoch seconds as the ledger's scripts see them: Redis TIME plus the test clock offset."""
    return from_time_reply(client.time(), settings)


def from_time_reply(reply: tuple[int, int], settings: Settings) -> float:
    """The ledger's now from a TIME reply read in a pipeline: (seconds, microseconds)."""
    seconds, micros = reply
    return seconds + micros / 1_000_000 + settings.clock_offset_s


class LedgerClock:
    """The ledger's now without a round trip per call: the host's clock plus its difference to the
    ledger's (Redis TIME and the test offset), measured again every `refresh_s`.

    For choosing which quiet-hours windows to pass to a script, where a few milliseconds of error
    change nothing (the script compares with its own TIME).
    """

    def __init__(self, client: redis.Redis, settings: Settings, refresh_s: float = 60.0):
        self.client = client
        self.settings = settings
        self.refresh_s = refresh_s
        self._skew = 0.0
        self._measured_at = float("-inf")

    def now(self) -> float:
        host = time.time()
        if host - self._measured_at > self.refresh_s:
            self._skew = ledger_now(self.client, self.settings) - time.time()
            self._measured_at = host
        return host + self._skew
