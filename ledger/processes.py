"""The worker processes seen: each writes a heartbeat; the CLI, the console and /metrics read them.

A heartbeat is a process-owned string key (JSON, expiring after FORGET_AFTER_S) plus its member in
one sorted set by last beat, so readers never scan the keyspace. A process not heard from for
LOST_AFTER_BEATS of its own intervals is `lost`; after FORGET_AFTER_S it is gone. Times are Redis's
clock, one for every host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis

from config.keys import Keys
from ledger.record import iso

LOST_AFTER_BEATS = 3
"""Heartbeats a process may miss before it shows as lost."""
FORGET_AFTER_S = 600
"""Seconds after its last heartbeat a process is no longer listed (10 minutes)."""
MAX_LISTED = 1000
"""Processes one listing reads: a fleet is tens of processes; the set is pruned on every beat."""


def server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


@dataclass(frozen=True)
class Heartbeats:
    """Write and read the heartbeats of one prefix."""

    redis: redis.Redis
    keys: Keys

    def beat(self, process_id: str, info: dict[str, Any], interval_s: float) -> None:
        """Record that `process_id` is alive now, with what it says about itself."""
        now = server_time(self.redis)
        value = json.dumps({**info, "interval_s": interval_s, "last_seen_ts": now})
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.process(process_id), value, ex=FORGET_AFTER_S)
        pipe.zadd(self.keys.processes, {process_id: now})
        pipe.zremrangebyscore(self.keys.processes, "-inf", now - FORGET_AFTER_S)
        pipe.execute()

    def leave(self, process_id: str) -> None:
        """A process that stops cleanly is not listed as lost."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.process(process_id))
        pipe.zrem(self.keys.processes, process_id)
        pipe.execute()

    def seen(self) -> list[dict[str, Any]]:
        """Every process heard from in the last FORGET_AFTER_S, most recent first, with `state`
        (`alive` or `lost`), `last_seen` (ISO 8601) and `last_seen_s_ago`."""
        now = server_time(self.redis)
        ids = [
            str(m)
            for m in cast(
                list[Any], self.redis.zrevrangebyscore(self.keys.processes, "+inf", now - FORGET_AFTER_S, 0, MAX_LISTED)
            )
        ]
        if not ids:
            return []
        out = []
        for process_id, raw in zip(ids, cast(list[Any], self.redis.mget([self.keys.process(i) for i in ids]))):
            if raw is None:
                continue
            info = json.loads(raw)
            ago = max(0.0, now - float(info.pop("last_seen_ts")))
            interval = float(info.pop("interval_s"))
            out.append(
                {
                    "id": process_id,
                    **info,
                    "last_seen": iso(now - ago),
                    "last_seen_s_ago": round(ago, 1),
                    "state": "alive" if ago <= LOST_AFTER_BEATS * interval else "lost",
                }
            )
        return out


def alive_count(processes: list[dict[str, Any]]) -> int:
    return sum(p["state"] == "alive" for p in processes)
