"""Prometheus metrics read from Redis on every scrape, so they are right however many workers run."""

from __future__ import annotations

from typing import cast

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ledger.schema import COUNTERS as LEDGER_COUNTERS
from ledger.stats import stats
from ledger.store import Ledger

PREFIX = "cosmos_"

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
"""Upper bounds (seconds) the ledger's `observe` uses (ledger/lua/common.lua): every scrape shows all of them."""

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

HISTOGRAMS = {
    "send": ("send_latency_seconds", "Time from enqueue to COSMOS accepting the message (state sent)."),
    "receipt": ("receipt_latency_seconds", "Time from sent to its delivery receipt being applied."),
    "smpp_submit": ("smpp_submit_latency_seconds", "Time from writing a submit_sm to its submit_sm_resp."),
}

COUNTER_HELP = {
    "attempts": "HTTP requests made to COSMOS.",
    "retries": "Jobs put back for a later attempt.",
    "transient_failures": "Attempts that failed transiently (5xx, timeouts, connection errors, ambiguous).",
    "ambiguous_attempts": "Attempts whose outcome is unknown (COSMOS may have accepted them).",
    "ambiguous_resends": "Attempts that repeated one whose outcome was unknown.",
    "extra_sends": "Sends proven by a receipt for a message id other than the job's (duplicates on the phone).",
    "unauthorized": "Attempts COSMOS refused as unauthorized (bad credentials).",
    "breaker_opened": "Times the circuit breaker opened.",
}
"""Our wording for the long-standing counters; any other ledger counter gets the schema's description."""
NOT_EXPORTED_AS_COUNTERS = {"total_price"}
"""A receipt's price replaces the send response's, so the total can fall: a gauge, below."""


class LedgerCollector(Collector):
    """A custom collector: no state in this process, everything from the ledger's counters and sets."""

    def __init__(self, ledger: Ledger, overdue_s: float):
        self.ledger = ledger
        self.overdue_s = overdue_s

    def collect(self):
        figures = stats(self.ledger, self.overdue_s)
        # The ledger's client decodes responses: field names and counts are str.
        histograms = cast("dict[str, str]", self.ledger.redis.hgetall(self.ledger.keys.histograms))

        jobs = GaugeMetricFamily(f"{PREFIX}jobs", "Jobs per state, as the ledger counts them.", labels=["state"])
        for state, count in figures["states"].items():
            jobs.add_metric([state], count)
        yield jobs

        dead = GaugeMetricFamily(f"{PREFIX}dead_jobs", "Dead jobs per reason.", labels=["reason"])
        for reason, count in sorted(figures["dead_reasons"].items()):
            dead.add_metric([reason], count)
        yield dead

        for name, description in LEDGER_COUNTERS.items():
            if name not in NOT_EXPORTED_AS_COUNTERS:
                documentation = COUNTER_HELP.get(name, description[:1].upper() + description[1:] + ".")
                yield CounterMetricFamily(f"{PREFIX}{name}", documentation, value=figures.get(name, 0))

        depth = GaugeMetricFamily(f"{PREFIX}queue_depth", "Broker messages waiting per lane.", labels=["lane"])
        for lane, count in figures["queue_depth"].items():
            depth.add_metric([lane], count)
        yield depth
        backlog = GaugeMetricFamily(
            f"{PREFIX}backlog",
            "Queued jobs a worker could take now, per lane: queued less those waiting for send_at or quiet hours.",
            labels=["lane"],
        )
        for lane, count in figures["backlog"].items():
            backlog.add_metric([lane], count)
        yield backlog
        yield GaugeMetricFamily(
            f"{PREFIX}scheduled_waiting", "Jobs whose send_at is ahead.", value=figures["scheduled"]["waiting"]
        )
        quiet = figures["quiet_hours"]
        yield GaugeMetricFamily(
            f"{PREFIX}quiet_hours_active",
            "1 while the quiet hours hold bulk jobs, else 0.",
            value=int(quiet is not None),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}quiet_hours_waiting",
            "Bulk jobs waiting for the quiet hours to end.",
            value=quiet["waiting"] if quiet else 0,
        )
        due = GaugeMetricFamily(
            f"{PREFIX}retry_due_size", "Jobs waiting for a retry or deferral, per lane.", labels=["lane"]
        )
        for lane, count in figures["retry_due_size"].items():
            due.add_metric([lane], count)
        yield due

        yield GaugeMetricFamily(
            f"{PREFIX}dead_letter_size", "Jobs in the dead-letter queue.", value=figures["dead_letter_size"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}held_size",
            "Jobs held after an ambiguous attempt, awaiting an operator.",
            value=figures["held_size"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}total_price_usd", "Sum of prices of sent messages, US dollars.", value=figures["total_price"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}breaker_state",
            "Circuit breaker: 0 closed, 1 half_open, 2 open.",
            value=BREAKER_STATES.get(figures["breaker"]["state"], 2),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}breaker_consecutive_failures",
            "Consecutive transient failures the breaker has counted.",
            value=figures["breaker"]["consecutive_failures"],
        )
        yield paused_gauge(figures.get("paused"))
        yield GaugeMetricFamily(
            f"{PREFIX}receipts_overdue",
            "Jobs sent longer than COSMOS_RECEIPT_OVERDUE_S ago that still await their delivery receipt.",
            value=figures["receipts_overdue"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}receipt_oldest_wait_seconds",
            "How long the job that has waited longest for its delivery receipt has been sent (0 when none waits).",
            value=figures["oldest_awaiting_receipt_s"] or 0,
        )

        smpp = figures.get("smpp")
        if smpp:
            yield GaugeMetricFamily(f"{PREFIX}smpp_binds_held", "SMPP binds held now, fleet-wide.", value=smpp["binds"])
            yield GaugeMetricFamily(
                f"{PREFIX}smpp_window_in_use",
                "Messages being sent now over SMPP, against smpp_binds x COSMOS_SMPP_WINDOW submits.",
                value=smpp["in_flight"],
            )
            yield GaugeMetricFamily(
                f"{PREFIX}smpp_window_capacity",
                "smpp_binds x COSMOS_SMPP_WINDOW.",
                value=smpp["binds"] * smpp["window"],
            )

        for field, (name, documentation) in HISTOGRAMS.items():
            yield histogram(f"{PREFIX}{name}", documentation, field, histograms)


def paused_gauge(pause: dict | None) -> GaugeMetricFamily:
    """1 with the pause's kind and reason while sending is paused; one 0 sample (kind "none") otherwise."""
    gauge = GaugeMetricFamily(
        f"{PREFIX}sending_paused",
        "1 while sending is paused: kind account (COSMOS "
        "refused our account; lifted by a probe) or operator, with the reason.",
        labels=["kind", "reason"],
    )
    if pause:
        gauge.add_metric([str(pause.get("kind")), str(pause.get("reason") or "")], 1)
    else:
        gauge.add_metric(["none", ""], 0)
    return gauge


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
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=float(raw.get(f"{field}:sum", 0)))
