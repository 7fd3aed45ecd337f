"""Prometheus metrics read from Redis on every scrape, so they are right however many workers run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from config.keys import LANES
from ledger.processes import Heartbeats, server_time
from ledger.schema import COUNTERS as LEDGER_COUNTERS
from ledger.schema import DEAD_REASONS_OURS, HISTOGRAM_BUCKETS, OUTCOME_KINDS, OUTCOME_STATES
from ledger.stats import stats
from ledger.store import Ledger

PREFIX = "cosmos_"

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
PAUSE_KINDS = ("operator", "account", "budget")
"""Label values of the pause gauges: who paused sending."""
ATTEMPT_OUTCOMES = tuple(k for k in OUTCOME_KINDS if k not in ("defer", "release"))
"""What one request to COSMOS came to; `defer` and `release` are not requests."""

HISTOGRAMS = {
    "attempt": ("attempt_latency_seconds", "Time one request to COSMOS took, answered or not."),
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


class RegistryCollector(Collector):
    """Every metric of another registry: one scrape of all, besides a scrape of each part."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()


class LedgerCollector(Collector):
    """A custom collector: no state in this process, everything from the ledger's counters and sets."""

    def __init__(self, ledger: Ledger, overdue_s: float):
        self.ledger = ledger
        self.overdue_s = overdue_s

    def collect(self):
        figures = stats(self.ledger, self.overdue_s)
        # The ledger's client decodes responses: field names and counts are str.
        histograms = cast("dict[str, str]", self.ledger.redis.hgetall(self.ledger.keys.histograms))
        counters = cast("dict[str, str]", self.ledger.redis.hgetall(self.ledger.keys.counters))
        pause = cast("dict[str, str]", self.ledger.redis.hgetall(self.ledger.keys.pause))
        now = server_time(self.ledger.redis)
        yield from outcome_counters(counters)
        yield from pause_gauges(pause, now, figures["budget"]["paused_since"])
        yield from budget_gauges(figures)
        yield from worker_gauges(Heartbeats(self.ledger.redis, self.ledger.keys).seen(), now)

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
        archive = figures["archive"]
        yield GaugeMetricFamily(
            f"{PREFIX}archive_backlog",
            "Records waiting in Redis to be written to the archive.",
            value=archive["backlog"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}archive_oldest_seconds",
            "How long the record that has waited longest for the archive has waited (0 when none waits).",
            value=archive["oldest_s"] or 0,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}archive_failing",
            "1 while the archiver's last write failed.",
            value=int(bool(archive["last_error"])),
        )

        for field, (name, documentation) in HISTOGRAMS.items():
            yield histogram(f"{PREFIX}{name}", documentation, field, histograms)


def outcome_counters(counters: dict[str, str]) -> Iterator[CounterMetricFamily]:
    """Monotonic counts kept in the ledger's counters hash, which the retention sweep leaves alone."""
    outcomes = CounterMetricFamily(
        f"{PREFIX}outcomes",
        "Jobs that reached each outcome, per lane (never lowered: chart it with rate()).",
        labels=["outcome", "lane"],
    )
    for outcome in OUTCOME_STATES:
        for lane in LANES:
            outcomes.add_metric([outcome, lane], int(counters.get(f"outcome:{outcome}:{lane}", 0)))
    yield outcomes
    dead = CounterMetricFamily(f"{PREFIX}dead_letters", "Jobs dead-lettered, per dead reason.", labels=["reason"])
    reasons = {k.split(":", 1)[1]: int(v) for k, v in counters.items() if k.startswith("dead_total:")}
    for reason in sorted(set(reasons) | set(DEAD_REASONS_OURS)):
        dead.add_metric([reason], reasons.get(reason, 0))
    yield dead
    attempts = CounterMetricFamily(
        f"{PREFIX}attempt_outcomes",
        "Requests to COSMOS per route and outcome (accepted, permanent, transient, ambiguous, account).",
        labels=["route", "outcome"],
    )
    seen = {tuple(k.split(":")[1:3]): int(v) for k, v in counters.items() if k.startswith("attempt:")}
    for route, outcome in sorted(set(seen) | {("http", kind) for kind in ATTEMPT_OUTCOMES}):
        attempts.add_metric([route, outcome], seen.get((route, outcome), 0))
    yield attempts


def budget_gauges(figures: dict) -> list[GaugeMetricFamily]:
    """Today's spend as the ledger counts it for the budget, and the caps (0: none)."""
    spend, budget = figures["spend_today"], figures["budget"]
    return [
        GaugeMetricFamily(
            f"{PREFIX}spend_today_messages",
            "Messages accepted on the current budget day (midnight in COSMOS_BUDGET_TZ).",
            value=spend["messages"],
        ),
        GaugeMetricFamily(
            f"{PREFIX}spend_today_usd", "Their price on the current budget day, US dollars.", value=spend["price"]
        ),
        GaugeMetricFamily(
            f"{PREFIX}daily_budget_usd",
            "COSMOS_DAILY_BUDGET: US dollars per budget day (0: no cap).",
            value=budget["daily_budget"],
        ),
        GaugeMetricFamily(
            f"{PREFIX}daily_message_cap",
            "COSMOS_DAILY_MESSAGE_CAP: messages per budget day (0: no cap).",
            value=budget["daily_message_cap"],
        ),
    ]


def pause_gauges(pause: dict[str, str], now: float, budget_since: float | None = None) -> Iterator[GaugeMetricFamily]:
    """Each pause kind per lane, 1 or 0, and for how long: bounded labels only (the reason is in `stats`).

    `budget_since`: when today's budget pause began (it lives in the budget day's hash, not `pause`)."""
    paused = GaugeMetricFamily(
        f"{PREFIX}sending_paused",
        "1 while sending is paused for this kind (operator, account, budget) and lane.",
        labels=["kind", "lane"],
    )
    seconds = GaugeMetricFamily(
        f"{PREFIX}sending_paused_seconds",
        "How long sending has been paused for this kind and lane (0 when it is not).",
        labels=["kind", "lane"],
    )
    since: dict[tuple[str, str], float] = {}
    for field, raw in pause.items():
        kind, _, scope = field.partition(":")
        kind = "operator" if kind == "op" else kind
        if kind not in PAUSE_KINDS:
            continue  # bookkeeping such as the account pause's probe time
        try:
            ts = float(json.loads(raw).get("ts") or now)
        except (ValueError, AttributeError):
            ts = now
        for lane in LANES if scope in ("", "all") else [scope]:
            since[(kind, lane)] = min(ts, since.get((kind, lane), ts))
    if budget_since is not None:
        for lane in LANES:
            since[("budget", lane)] = budget_since
    for kind in PAUSE_KINDS:
        for lane in LANES:
            start = since.get((kind, lane))
            paused.add_metric([kind, lane], 0 if start is None else 1)
            seconds.add_metric([kind, lane], 0 if start is None else max(0.0, round(now - start, 1)))
    yield paused
    yield seconds


def worker_gauges(processes: list[dict[str, Any]], now: float) -> Iterator[GaugeMetricFamily]:
    """What the workers' heartbeats say: processes alive and lost, their threads, the reconciler's last run."""
    count = GaugeMetricFamily(
        f"{PREFIX}worker_processes", "Worker processes heard from in the last 10 minutes.", labels=["state"]
    )
    for state in ("alive", "lost"):
        count.add_metric([state], sum(p["state"] == state for p in processes))
    yield count
    alive = [p for p in processes if p["state"] == "alive"]
    busy = GaugeMetricFamily(
        f"{PREFIX}worker_threads_busy", "Threads of alive worker processes busy now.", labels=["kind"]
    )
    total = GaugeMetricFamily(f"{PREFIX}worker_threads", "Threads of alive worker processes.", labels=["kind"])
    for kind, prefix in (("task", "threads"), ("send", "send_threads")):
        busy.add_metric([kind], sum(int(p.get(f"{prefix}_busy") or 0) for p in alive))
        total.add_metric([kind], sum(int(p.get(f"{prefix}_total") or 0) for p in alive))
    yield busy
    yield total
    runs = [p["last_reconciler_run"] for p in alive if p.get("last_reconciler_run")]
    last = max((datetime.fromisoformat(r.replace("Z", "+00:00")).timestamp() for r in runs), default=None)
    yield GaugeMetricFamily(
        f"{PREFIX}reconciler_last_run_age_seconds",
        "Seconds since an alive worker process last ran the reconciler (-1: none has yet).",
        value=-1 if last is None else round(max(0.0, now - last), 1),
    )


def histogram(name: str, documentation: str, field: str, raw: dict[str, str]) -> HistogramMetricFamily:
    """A cumulative histogram from the ledger's per-bucket (non-cumulative) counts of `field`."""
    per_bucket = {float(b): 0 for b in HISTOGRAM_BUCKETS}  # every scrape shows every bound
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
