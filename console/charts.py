"""Server-rendered SVG charts for the Reports page: bars over days, stacked bars, horizontal bars.

No script and no CDN: each chart is a small inline SVG with a <title> per bar, so a hover shows the value.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 720, 180, 28
PALETTE = ("#2b6cb0", "#c53030", "#d69e2e", "#2f855a", "#6b46c1", "#dd6b20", "#319795", "#718096")


def _frame(body: str, label: str, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def bars(days: list[str], values: list[float], label: str, unit: str = "", color: str = PALETTE[0]) -> str:
    """One bar per day; the largest value's bar fills the height."""
    top = max(values, default=0) or 1
    step = (WIDTH - PAD) / max(len(days), 1)
    body = [f'<text x="0" y="12" class="axis">{escape(_fmt(top, unit))}</text>']
    for i, (day, value) in enumerate(zip(days, values)):
        h = (HEIGHT - 2 * PAD) * value / top
        x, y = PAD + i * step, HEIGHT - PAD - h
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(day)}: {escape(_fmt(value, unit))}</title></rect>"
        )
    body += _day_ticks(days, step)
    return _frame("".join(body), label)


def stacked(days: list[str], series: dict[str, list[float]], label: str) -> str:
    """Stacked bars per day (e.g. dead reasons), with a legend."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max(totals, default=0) or 1
    step = (WIDTH - PAD) / max(len(days), 1)
    body = [f'<text x="0" y="12" class="axis">{escape(_fmt(top))}</text>']
    base = [0.0] * len(days)
    for n, (name, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        for i, value in enumerate(values):
            if not value:
                continue
            h = (HEIGHT - 2 * PAD) * value / top
            base[i] += h
            x, y = PAD + i * step, HEIGHT - PAD - base[i]
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(days[i])} {escape(name)}: {escape(_fmt(value))}</title></rect>"
            )
        body.append(
            f'<rect x="{PAD + 110 * n}" y="2" width="10" height="10" fill="{color}"/>'
            f'<text x="{PAD + 14 + 110 * n}" y="11" class="legend">{escape(name[:14])}</text>'
        )
    body += _day_ticks(days, step)
    return _frame("".join(body), label)


def ranking(items: list[tuple[str, float]], label: str, unit: str = "") -> str:
    """Horizontal bars, largest first (top batches or senders by spend)."""
    top = max((v for _, v in items), default=0) or 1
    row = 22
    height = max(row * len(items) + 8, 30)
    body = []
    for i, (name, value) in enumerate(items):
        w = (WIDTH - 330) * value / top
        y = 4 + i * row
        body.append(
            f'<text x="0" y="{y + 14}" class="label">{escape(name[:36])}</text>'
            f'<rect x="240" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
            f"<title>{escape(name)}: {escape(_fmt(value, unit))}</title></rect>"
            f'<text x="{246 + w:.1f}" y="{y + 14}" class="value">{escape(_fmt(value, unit))}</text>'
        )
    if not items:
        body.append('<text x="0" y="20" class="empty">Nothing archived yet.</text>')
    return _frame("".join(body), label, height)


def _day_ticks(days: list[str], step: float) -> list[str]:
    every = max(1, len(days) // 6)
    return [
        f'<text x="{PAD + i * step:.1f}" y="{HEIGHT - 8}" class="axis">{escape(day[5:])}</text>'
        for i, day in enumerate(days)
        if i % every == 0
    ]


def _fmt(value: float, unit: str = "") -> str:
    if unit == "$":
        return f"${value:,.2f}"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:,.0f}"
