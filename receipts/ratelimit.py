"""Per-client token buckets in memory, spent only by requests that fail authentication.

COSMOS's own receipts carry valid tokens and are never limited: at full speed they arrive faster
than any fixed per-address rate, and behind a proxy all of COSMOS may share one address.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000
"""Buckets kept at most; the least recently seen client is forgotten (and starts full again)."""


class TokenBuckets:
    """`rate` tokens per second per client, at most `burst` saved; one process's memory only."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """0 if `client` may go now (a token is spent), else seconds until its next token."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class AuthFailureLimit:
    """How often one client may fail authentication before it is answered 429 instead of 401."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.buckets = TokenBuckets(rate, clock=clock) if rate > 0 else None

    def wait_after_failure(self, client: str) -> float:
        """Record one failed authentication of `client`; seconds it must wait (0: answer 401 as usual)."""
        return 0.0 if self.buckets is None else self.buckets.take(client)
