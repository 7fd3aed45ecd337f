"""Prometheus metrics read from Redis on every scrape, so they are right however many workers run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ledger.stats import stats
from ledger.store import Ledger

PREFIX = "cosmos_"

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
"""Upper bounds (seconds) the ledger's `observe` uses (ledger/lua/common.lua): every scrape shows all of them."""

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

HISTOGRAMS = {
    "send": ("send_latency_seconds", "Time from enqueue to COSMOS accepting the message (state sent)."),
    "receipt": ("receipt_latency_seconds", "Time from sent to its delivery receipt being applied."),
}

COUNTERS = {
    "attempts": "HTTP requests made to COSMOS.",
    "retries": "Jobs put back in the due set for a later attempt.",
    "transient_failures": "Attempts that failed transiently (5xx, timeouts, connection errors, ambiguous).",
    "ambiguous_attempts": "Attempts whose outcome is unknown (COSMOS may have accepted them).",
    "ambiguous_resends": "Held jobs an operator sent again.",
    "extra_sends": "Sends proven by a receipt for a message id other than the job's (duplicates on the phone).",
    "unauthorized": "Attempts COSMOS refused as unauthorized (bad credentials).",
}


@dataclass(frozen=True)
class Overdue:
    """Jobs `sent` for longer than the threshold without a receipt, and how long the oldest has waited."""

    count: int
    oldest_age_s: float


def overdue_receipts(client: redis.Redis, awaiting_key: str, threshold_s: float, now: float) -> Overdue:
    """Two O(log n) reads of the `awaiting` zset (job -> sent_ts), whatever its size."""
    pipe = client.pipeline(transaction=False)
    pipe.zcount(awaiting_key, "-inf", f"({now - threshold_s}")
    pipe.zrange(awaiting_key, 0, 0, withscores=True)
    count, oldest = pipe.execute()
    age = max(0.0, now - float(oldest[0][1])) if oldest else 0.0
    return Overdue(int(count), round(age, 3))


class LedgerCollector(Collector):
    """A custom collector: no state in this process, everything from the ledger's counters and hashes."""

    def __init__(self, ledger: Ledger, overdue_s: float, clock: Callable[[], float] = time.time):
        self.ledger = ledger
        self.overdue_s = overdue_s
        self.clock = clock

    def collect(self):
        figures = stats(self.ledger)
        overdue = overdue_receipts(self.ledger.redis, self.ledger.keys.awaiting, self.overdue_s, self.clock())
        yield GaugeMetricFamily(f"{PREFIX}receipts_overdue", "Jobs sent longer than COSMOS_RECEIPT_OVERDUE_S "
                                "ago that still await their delivery receipt.", value=overdue.count)
        yield GaugeMetricFamily(f"{PREFIX}receipt_oldest_wait_seconds", "How long the job that has waited "
                                "longest for its delivery receipt has been sent (0 when none waits).",
                                value=overdue.oldest_age_s)
        histograms = self.ledger.redis.hgetall(self.ledger.keys.histograms)

        jobs = GaugeMetricFamily(f"{PREFIX}jobs", "Jobs per state, as the ledger counts them.", labels=["state"])
        for state, count in figures["states"].items():
            jobs.add_metric([state], count)
        yield jobs

        dead = GaugeMetricFamily(f"{PREFIX}dead_jobs", "Dead jobs per reason.", labels=["reason"])
        for reason, count in sorted(figures["dead_reasons"].items()):
            dead.add_metric([reason], count)
        yield dead

        for name, documentation in COUNTERS.items():
            yield CounterMetricFamily(f"{PREFIX}{name}", documentation, value=figures[name])
        yield CounterMetricFamily(f"{PREFIX}breaker_opened", "Times the circuit breaker opened.",
                                  value=figures["breaker"]["times_opened"])

        depth = GaugeMetricFamily(f"{PREFIX}queue_depth", "Broker messages waiting per lane.", labels=["lane"])
        for lane, count in figures["queue_depth"].items():
            depth.add_metric([lane], count)
        yield depth

        yield GaugeMetricFamily(f"{PREFIX}dead_letter_size", "Jobs in the dead-letter queue.",
                                value=figures["dead_letter_size"])
        yield GaugeMetricFamily(f"{PREFIX}held_size", "Jobs held after an ambiguous attempt, awaiting an operator.",
                                value=figures["held_size"])
        yield GaugeMetricFamily(f"{PREFIX}due_size", "Jobs waiting in the due set (retries and outbox).",
                                value=figures["due_size"])
        # A gauge, not a counter: a receipt's price replaces the send response's, so it can fall.
        yield GaugeMetricFamily(f"{PREFIX}total_price_usd", "Sum of prices of sent messages, US dollars.",
                                value=figures["total_price"])
        yield GaugeMetricFamily(f"{PREFIX}breaker_state", "Circuit breaker: 0 closed, 1 half_open, 2 open.",
                                value=BREAKER_STATES.get(figures["breaker"]["state"], 2))
        yield GaugeMetricFamily(f"{PREFIX}breaker_consecutive_failures",
                                "Consecutive transient failures the breaker has counted.",
                                value=figures["breaker"]["consecutive_failures"])

        for field, (name, documentation) in HISTOGRAMS.items():
            yield histogram(f"{PREFIX}{name}", documentation, field, histograms)


def histogram(name: str, documentation: str, field: str, raw: dict[str, str]) -> HistogramMetricFamily:
    """A cumulative histogram from the ledger's per-bucket (non-cumulative) counts of `field`."""
    per_bucket = {float(b): 0 for b in LATENCY_BUCKETS_S}
    infinite = 0
    for key, value in raw.items():
        name_part, _, le = key.partition(":")
        if name_part != field or le in ("sum", "count"):
            continue
        if le == "+Inf":
            infinite += int(value)
        else:
            bound = float(le)
            per_bucket[bound] = per_bucket.get(bound, 0) + int(value)
    buckets, running = [], 0
    for bound in sorted(per_bucket):
        running += per_bucket[bound]
        buckets.append((floatToGoString(bound), running))
    buckets.append(("+Inf", running + infinite))
    return HistogramMetricFamily(name, documentation, buckets=buckets,
                                 sum_value=float(raw.get(f"{field}:sum", 0)))
