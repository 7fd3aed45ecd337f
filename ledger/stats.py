"""The figures of `cosmos-sms stats` and `/metrics`, read from the ledger's counters."""

from __future__ import annotations

from config.keys import LANES
from ledger.record import STATES
from ledger.store import Ledger


def stats(ledger: Ledger) -> dict:
    """Counts per state and dead reason, dead-letter size, total price, resends, breaker."""
    counters = ledger.counters()
    pipe = ledger.redis.pipeline(transaction=False)
    pipe.zcard(ledger.keys.dead)
    pipe.zcard(ledger.keys.held)
    pipe.zcard(ledger.keys.due)
    for lane in LANES:
        pipe.llen(ledger.keys.broker_queue_key(lane))
    dead_size, held_size, due_size, *queue_depths = pipe.execute()
    breaker = ledger.breaker()
    return {
        "states": {s: int(counters.get(f"state:{s}", 0)) for s in STATES},
        "dead_reasons": {k.split(":", 1)[1]: int(v) for k, v in counters.items()
                         if k.startswith("dead:") and int(v) > 0},
        "dead_letter_size": dead_size,
        "held_size": held_size,
        "due_size": due_size,
        "queue_depth": dict(zip(LANES, queue_depths)),
        "total_price": round(float(counters.get("total_price", 0)), 6),
        "attempts": int(counters.get("attempts", 0)),
        "transient_failures": int(counters.get("transient_failures", 0)),
        "retries": int(counters.get("retries", 0)),
        "ambiguous_attempts": int(counters.get("ambiguous_attempts", 0)),
        "ambiguous_resends": int(counters.get("ambiguous_resends", 0)),
        "extra_sends": int(counters.get("extra_sends", 0)),
        "unauthorized": int(counters.get("unauthorized", 0)),
        "breaker": {
            "state": breaker.get("state", "closed"),
            "consecutive_failures": int(breaker.get("failures", 0)),
            "times_opened": int(counters.get("breaker_opened", 0)),
        },
    }
