"""The demo's own key prefixes on a shared Redis: registered while a run lives, dropped when it ends or died.

A demo killed outright (SIGKILL, power loss) runs no clean-up; the next demo on the same Redis
finds its prefix with a stale heartbeat and removes its keys.
"""

from __future__ import annotations

import threading
import time
from typing import cast

import redis

from config.keys import DEMO_RUNS

RUNS_KEY = DEMO_RUNS
HEARTBEAT_S = 5.0
"""How often a live demo says so."""
STALE_AFTER_S = 60.0
"""A prefix whose run has not said it lives for this long belongs to a dead demo."""
DELETE_BATCH = 500
"""Keys removed per UNLINK: a few hundred at a time, never one long call."""


def drop_prefix(client: redis.Redis, prefix: str) -> int:
    """Remove every key under `prefix:` (paged SCAN, batched UNLINK) and its registration; returns the count."""
    removed, batch = 0, []
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= DELETE_BATCH:
            removed += client.unlink(*batch)
            batch.clear()
    if batch:
        removed += client.unlink(*batch)
    client.zrem(RUNS_KEY, prefix)
    return removed


def drop_stale(client: redis.Redis, now: float | None = None) -> list[str]:
    """Drop the keys of every registered demo whose heartbeat is older than STALE_AFTER_S."""
    now = time.time() if now is None else now
    # Members are str or bytes, whichever way the client decodes.
    stale = cast(list[str | bytes], client.zrangebyscore(RUNS_KEY, "-inf", now - STALE_AFTER_S, start=0, num=100))
    for prefix in stale:
        drop_prefix(client, prefix.decode() if isinstance(prefix, bytes) else prefix)
    return [p.decode() if isinstance(p, bytes) else p for p in stale]


class Heartbeat:
    """Registers `prefix` and refreshes it from a daemon thread until stopped (it dies with the demo)."""

    def __init__(self, client: redis.Redis, prefix: str, interval_s: float = HEARTBEAT_S):
        self.client, self.prefix, self.interval_s = client, prefix, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._beat()
            except redis.RedisError:
                pass  # the next beat tries again; a minute of silence is needed to look dead

    def _beat(self) -> None:
        self.client.zadd(RUNS_KEY, {self.prefix: time.time()})
