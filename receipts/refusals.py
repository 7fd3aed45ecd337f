"""Every refusal of the receiver: one JSON body shape, a Prometheus counter by reason, a rate-limited log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter

from receipts.intake import Refusal

log = structlog.get_logger("cosmos.receipts")

LOG_INTERVAL_S = 10.0
"""At most one log line per refusal reason in this many seconds; the line says how many it stands for."""
MAX_REASONS = 64
"""Distinct reasons tracked for logging; reasons are our own constants, so this is only a backstop."""


class LogThrottle:
    """Lets one event per key through every `interval_s`, counting the ones it swallowed in between."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> int:
        """0 to stay quiet, else how many events (this one included) the line to log now stands for."""
        now = self.clock()
        with self._lock:
            last, swallowed = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval_s:
                self._last[key] = (last, swallowed + 1)
                return 0
            if key not in self._last and len(self._last) >= MAX_REASONS:
                self._last.pop(next(iter(self._last)))
            self._last[key] = (now, 0)
            return swallowed + 1


class Refusals:
    """Counts, logs and answers refusals: `cosmos_receiver_refusals_total{reason,code}`."""

    def __init__(self, registry: CollectorRegistry, throttle: LogThrottle | None = None):
        self.counter = Counter(
            "cosmos_receiver_refusals",
            "Requests this receiver process refused, by reason "
            "and HTTP status (process-local; resets when the receiver restarts).",
            ["reason", "code"],
            registry=registry,
        )
        self.throttle = throttle or LogThrottle()

    def answer(self, refusal: Refusal, client: str, path: str) -> JSONResponse:
        self.counter.labels(refusal.error, str(refusal.status)).inc()
        count = self.throttle.admit(refusal.error)
        if count:
            # `count` covers this refusal and those swallowed since the last line for this reason.
            log.warning(
                "request refused",
                http=refusal.status,
                error=refusal.error,
                client=client,
                path=path,
                count=count,
                per_s=LOG_INTERVAL_S,
            )
        return JSONResponse({"error": refusal.error, "detail": refusal.detail}, refusal.status, refusal.headers)
