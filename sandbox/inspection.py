"""What the sandbox saw: counters, bounded logs and per-(to, text) counts, read through /_sandbox/."""

from __future__ import annotations

import time
from collections import Counter, deque

REQUEST_LOG_SIZE = 1_000
"""Entries kept in the request log (oldest dropped first)."""

MESSAGE_LOG_SIZE = 10_000
"""Accepted messages kept for GET /_sandbox/messages."""

RECEIPT_LOG_SIZE = 1_000
"""Receipt attempts kept for GET /_sandbox/receipts."""

PER_SECOND_HORIZON_S = 600
"""Seconds of per-second request counts kept (older seconds are pruned)."""


class Inspection:
    """All counters and logs of one sandbox; only the event loop's thread touches it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.accepted = 0
        self.drops = 0
        self.receipts_sent = 0
        self.receipts_failed = 0
        self.receipt_attempts = 0
        self.per_second: dict[int, int] = {}
        self.max_per_second = 0
        self._second = 0
        self._second_count = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.duplicates = 0
        self.request_log: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.message_log: deque[dict] = deque(maxlen=MESSAGE_LOG_SIZE)
        self.receipt_log: deque[dict] = deque(maxlen=RECEIPT_LOG_SIZE)

    def count_request(self, now: float) -> None:
        """One SMS request arrived at unix time `now` (hot path: a few dict operations)."""
        self.requests += 1
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_count = 0
            # Pruning only when the second changes keeps the hot path O(1).
            horizon = second - PER_SECOND_HORIZON_S
            for old in [s for s in self.per_second if s <= horizon]:
                del self.per_second[old]
        self._second_count += 1
        self.per_second[second] = self._second_count
        self.max_per_second = max(self.max_per_second, self._second_count)

    def log_request(self, entry: dict) -> None:
        """Record one answered (or dropped) request; `entry["status"]` None means no answer was sent."""
        status = entry["status"]
        if entry["http"] is not None:
            self.by_status[status] += 1
        self.request_log.append(entry)

    def count_accepted(self, message: dict) -> None:
        self.accepted += 1
        key = (message["to"], message["text"])
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        if seen == 1:
            self.duplicates += 1
        self.message_log.append(message)

    def log_receipt(self, entry: dict) -> None:
        self.receipt_attempts += 1
        self.receipt_log.append(entry)

    def stats(self) -> dict:
        horizon = int(time.time()) - PER_SECOND_HORIZON_S
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "accepted": self.accepted,
            "drops": self.drops,
            "receipts_sent": self.receipts_sent,
            "receipts_failed": self.receipts_failed,
            "receipt_attempts": self.receipt_attempts,
            "per_second": {str(s): n for s, n in self.per_second.items() if s > horizon},
            "max_per_second": self.max_per_second,
        }

    def accepted_counts(self, to: str | None = None, text: str | None = None) -> dict:
        """The accepted count per (to, text) pair, optionally only the pairs matching `to`/`text`."""
        rows = [
            {"to": t, "text": x, "count": n}
            for (t, x), n in self.counts.items()
            if (to is None or t == to) and (text is None or x == text)
        ]
        return {"total": self.accepted, "counts": rows, "duplicates": self.duplicates}


def last(log: deque, limit: int) -> list[dict]:
    """The newest `limit` entries of a log, oldest first."""
    if limit >= len(log):
        return list(log)
    return list(log)[-limit:]
