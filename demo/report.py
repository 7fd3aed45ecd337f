"""The demo's summary: outcomes, price, throughput and latencies from the outcome records."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

from rich.console import Console
from rich.table import Table

from ledger.record import STATES


def summarize(
    records: list[dict],
    count: int,
    elapsed_s: float,
    final: bool,
    private_redis: bool,
    account_pause: dict | None = None,
    scheduled: dict | None = None,
) -> dict:
    """The summary printed by `cosmos-sms demo` (as a table, or as JSON with --json)."""
    states = Counter(r["state"] for r in records)
    reasons = Counter(r["dead_reason"] for r in records if r["state"] == "dead")
    to_sent = _latencies_ms(records, "sent_at")
    to_delivered = _latencies_ms(records, "delivered_at")
    return {
        "count": count,
        "final": final,
        "states": {state: states.get(state, 0) for state in STATES},
        "dead_reasons": dict(sorted(reasons.items())),
        "total_price": round(sum(r["price"] or 0.0 for r in records), 6),
        "attempts": sum(r["attempts"] for r in records),
        "elapsed_s": round(elapsed_s, 3),
        # Only a finished run has a meaningful rate.
        "throughput_msg_s": round(count / elapsed_s, 1) if final and elapsed_s > 0 else None,
        "latency_ms": {
            "to_sent": {"p50": percentile(to_sent, 50), "p95": percentile(to_sent, 95)},
            "to_delivered": {"p50": percentile(to_delivered, 50), "p95": percentile(to_delivered, 95)},
        },
        "redis": "private" if private_redis else "REDIS_URL",
        "account_pause": account_pause,
        "scheduled": scheduled,
    }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, rounded to the millisecond; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 1)


def _latencies_ms(records: list[dict], until: str) -> list[float]:
    return [(_time(r[until]) - _time(r["created_at"])) * 1000 for r in records if r.get(until)]


def _time(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def render(summary: dict, console: Console) -> None:
    """The summary as a rich table."""
    table = Table(title=f"cosmos-sms demo: {summary['count']} messages", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for state, n in summary["states"].items():
        if n:
            table.add_row(f"state {state}", str(n))
    for reason, n in summary["dead_reasons"].items():
        table.add_row(f"  dead: {reason}", str(n))
    table.add_section()
    table.add_row("HTTP attempts to COSMOS", str(summary["attempts"]))
    table.add_row("total price (USD)", f"{summary['total_price']:.4f}")
    rate = summary["throughput_msg_s"]
    table.add_row("throughput (enqueue → all final)", "-" if rate is None else f"{rate:g} msg/s")
    latency = summary["latency_ms"]
    for name, label in (("to_sent", "enqueue → sent"), ("to_delivered", "enqueue → receipt")):
        table.add_row(f"latency {label}", f"p50 {_ms(latency[name]['p50'])}, p95 {_ms(latency[name]['p95'])}")
    pause = summary.get("account_pause")
    if pause:
        table.add_row(
            "account refused (401): sending paused" if pause["paused_seen"] else "account refused (401)",
            f"{pause['unauthorized_answers']} × 401, {pause['probes']} probes, then resumed",
        )
    scheduled = summary.get("scheduled")
    if scheduled:
        latest = scheduled["latest_after_send_at_s"]
        table.add_row(
            f"scheduled {scheduled['ahead_s']:g} s ahead (send_at)",
            f"{scheduled['sent']} of {scheduled['count']} sent, {scheduled['early']} early"
            + ("" if latest is None else f", the last {latest:g} s after send_at"),
        )
    table.add_row("all jobs final", "yes" if summary["final"] else "[red]no[/red]")
    console.print(table)
    if summary.get("archive"):
        console.print(f"Every record is archived in {summary['archive']} (`cosmos-sms history`, `cosmos-sms spend`).")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"
