"""The ledger's clock, for Python code that computes times the scripts compare with their own.

The scripts read Redis TIME (one clock for every machine) plus `COSMOS_TEST_CLOCK_OFFSET_S`; Python
that needs "now" in the same terms (a time-of-day window's epoch boundaries) asks here, never the host.
"""

from __future__ import annotations

import redis

from config.settings import Settings


def ledger_now(client: redis.Redis, settings: Settings) -> float:
    """Epoch seconds as the ledger's scripts see them: Redis TIME plus the test clock offset."""
    seconds, micros = client.time()
    return seconds + micros / 1_000_000 + settings.clock_offset_s
