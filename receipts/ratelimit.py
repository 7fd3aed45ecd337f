"""Per-client-IP token buckets in memory, as ASGI middleware that answers 429 when one is empty."""

from __future__ import annotations

import json
import math
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


class RateLimitMiddleware:
    """Refuses HTTP requests over the client's rate with 429, a JSON body and Retry-After."""

    def __init__(self, app, rate: float):
        self.app = app
        self.buckets = TokenBuckets(rate) if rate > 0 else None

    async def __call__(self, scope, receive, send):
        if self.buckets is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)
        if wait == 0:
            return await self.app(scope, receive, send)
        body = json.dumps({"error": "rate_limited", "detail": f"over {self.buckets.rate:g} requests/s"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
