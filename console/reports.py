"""The Reports page's figures, from the archive's daily facts only (never its rows)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.store import Archive
from console import charts

DAYS = 30
TOP = 10


def report(archive: Archive, today: datetime | None = None) -> dict[str, Any]:
    """The charts (SVG) and the figures behind them, for the last DAYS days."""
    today = today or datetime.now(tz=UTC)
    days = [(today - timedelta(days=DAYS - 1 - i)).strftime("%Y-%m-%d") for i in range(DAYS)]
    messages: dict[str, float] = defaultdict(float)
    price: dict[str, float] = defaultdict(float)
    delivered: dict[str, float] = defaultdict(float)
    settled: dict[str, float] = defaultdict(float)
    dead: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for f in archive.daily(days[0]):
        messages[f["day"]] += f["messages"]
        price[f["day"]] += f["price"]
        if f["state"] in ("delivered", "not_delivered"):
            settled[f["day"]] += f["messages"]
            if f["state"] == "delivered":
                delivered[f["day"]] += f["messages"]
        if f["state"] == "dead":
            dead[f["dead_reason"] or "unknown"][f["day"]] += f["messages"]
    rate = [100 * delivered[d] / settled[d] if settled[d] else 0.0 for d in days]
    since = datetime.strptime(days[0], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    top_batches = sorted(archive.spend("batch", since), key=lambda g: -g["price"])[:TOP]
    top_senders = sorted(archive.spend("sender", since), key=lambda g: -g["price"])[:TOP]
    return {
        "days": days,
        "total_messages": int(sum(messages.values())),
        "total_price": round(sum(price.values()), 4),
        "messages_chart": charts.bars(days, [messages[d] for d in days], "Messages per day"),
        "spend_chart": charts.bars(days, [price[d] for d in days], "Spend per day", "$", charts.PALETTE[3]),
        "rate_chart": charts.bars(days, rate, "Delivery rate per day", "%", charts.PALETTE[6]),
        "dead_chart": charts.stacked(
            days, {reason: [per_day[d] for d in days] for reason, per_day in sorted(dead.items())}, "Dead reasons"
        ),
        "batches_chart": charts.ranking(
            [(g["key"] or "(none)", g["price"]) for g in top_batches if g["key"]], "Top batches by spend", "$"
        ),
        "senders_chart": charts.ranking(
            [(g["key"] or "(none)", g["price"]) for g in top_senders], "Top senders by spend", "$"
        ),
    }
