"""The overview's figures: counts, queues, due retries, oldest queued age, breaker, pauses, price, chart."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from config.keys import LANES
from console.activity import CHART_STATES, ActivityCounter
from ledger.controls import Controls
from ledger.stats import stats
from ledger.store import Ledger

CHART_W, CHART_H = 600, 160
AXIS_H = 16
"""Room under the bars for the time axis's labels."""
TICK_EVERY_MIN = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    state: str
    count: int
    label: str


def oldest_queued_age_s(ledger: Ledger, now: float) -> float | None:
    """Age of the oldest message waiting in a broker queue (workers take from the right end)."""
    pipe = ledger.redis.pipeline(transaction=False)
    for lane in LANES:
        pipe.lindex(ledger.keys.broker_queue_key(lane), -1)
    job_ids = [job for raw in pipe.execute() if raw for job in [_first_job(raw)] if job]
    created = [float(c) for c in (ledger.redis.hget(ledger.keys.job(j), "created_ts") for j in job_ids) if c]
    return round(now - min(created), 1) if created else None


def _first_job(raw: str) -> str | None:
    """The first job id inside a Celery task message as the outbox writes it."""
    try:
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    first = args[0] if args else None
    if isinstance(first, list):
        first = first[0] if first else None
    return first if isinstance(first, str) else None


def figures(ledger: Ledger, controls: Controls, activity: ActivityCounter) -> dict:
    """Everything the overview tiles show, read in a handful of round trips."""
    now = time.time()
    figures = stats(ledger)
    pipe = ledger.redis.pipeline(transaction=False)
    for lane in LANES:
        pipe.zcount(ledger.keys.retry(lane), "-inf", now)
    pipe.zcard(ledger.keys.awaiting)
    *due_now, awaiting = pipe.execute()
    today, day = activity.price(now)
    pauses = controls.pauses()
    if figures["budget"]["paused"]:
        pauses["budget"] = {"reason": f"{figures['budget']['paused']} reached (until {figures['budget']['day_end']})"}
    figures.update(
        due_now=dict(zip(LANES, due_now)),
        awaiting_receipt=awaiting,
        oldest_queued_age_s=oldest_queued_age_s(ledger, now),
        pauses=pauses,
        rate_limit=ledger.settings.rate_limit,
        price_today=today,
        price_24h=day,
        chart=chart(activity.minutes(now)),
    )
    return figures


def chart(minutes: list[tuple[int, dict[str, float]]]) -> dict:
    """Grouped bars (sent, delivered, not delivered, dead) per minute and a time axis (UTC, a tick every
    TICK_EVERY_MIN minutes) as SVG geometry; no script needed to draw it."""
    top = max([int(c.get(s, 0)) for _, c in minutes for s in CHART_STATES] + [1])
    slot = CHART_W / max(len(minutes), 1)
    bar_w = slot / (len(CHART_STATES) + 1)
    bars = []
    for i, (minute, counts) in enumerate(minutes):
        label = time.strftime("%H:%M", time.gmtime(minute * 60))
        for j, state in enumerate(CHART_STATES):
            count = int(counts.get(state, 0))
            h = CHART_H * count / top
            bars.append(
                Bar(
                    round(i * slot + j * bar_w, 2),
                    round(CHART_H - h, 2),
                    round(bar_w, 2),
                    round(h, 2),
                    state,
                    count,
                    label,
                )
            )
    ticks = [
        (round(i * slot, 2), time.strftime("%H:%M", time.gmtime(minute * 60)))
        for i, (minute, _) in enumerate(minutes)
        if minute % TICK_EVERY_MIN == 0
    ]
    totals = {s: sum(int(c.get(s, 0)) for _, c in minutes) for s in CHART_STATES}
    first = time.strftime("%H:%M", time.gmtime(minutes[0][0] * 60)) if minutes else ""
    last = time.strftime("%H:%M", time.gmtime(minutes[-1][0] * 60)) if minutes else ""
    return {
        "bars": bars,
        "top": top,
        "width": CHART_W,
        "height": CHART_H,
        "axis_h": AXIS_H,
        "ticks": ticks,
        "totals": totals,
        "first": first,
        "last": last,
    }
