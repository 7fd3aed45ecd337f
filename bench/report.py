"""The benchmark's table: one column per sandbox latency, the target beside each figure."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

TARGETS = {  # the throughput goals the table compares against
    "bulk": "≥ 1,500; ≥ 4× baseline at 100 ms",
    "single": "≥ 1.5× baseline",
    "cpu": "≤ 0.50",
    "bulk_enqueue": "≥ 5,000",
    "single_enqueue": "≥ 1,500",
    "p50": "≤ 20 at 0 ms, ≤ 120 at 100 ms",
    "rss": "≤ 200",
    "redis": "≤ 1,536",
    "single_cost": "≥ 0.90 (≤ 10% cost)",
}


def _rate(value: float, baseline: float | None = None) -> str:
    text = f"{value:,.0f}"
    return f"{text} ({value / baseline:.2f}×)" if baseline else text


def rows(results: dict) -> list[tuple[str, list[str], str]]:
    """(figure, one cell per latency, target) in the order the table shows them."""
    s = results["scenarios"]
    light = [r["light_load"] for r in s]
    out = [
        (
            "send_bulk end to end, msg/s (× baseline)",
            [_rate(r["bulk_msgs_per_s"], r["baseline_msgs_per_s"]) for r in s],
            TARGETS["bulk"],
        ),
        (
            "send_sms loop end to end, msg/s (× baseline)",
            [_rate(r["single_msgs_per_s"], r["baseline_msgs_per_s"]) for r in s],
            TARGETS["single"],
        ),
        ("naive Celery baseline, msg/s", [_rate(r["baseline_msgs_per_s"]) for r in s], ""),
        (
            "enqueue send_bulk (1,000 per call), msg/s",
            [_rate(r["bulk_enqueue_msgs_per_s"]) for r in s],
            TARGETS["bulk_enqueue"],
        ),
        ("enqueue send_sms loop, msg/s", [_rate(r["single_enqueue_msgs_per_s"]) for r in s], TARGETS["single_enqueue"]),
        ("enqueue baseline .delay() loop, msg/s", [_rate(r["baseline_enqueue_msgs_per_s"]) for r in s], ""),
        (
            "enqueue→sent at 50 msg/s, p50 / p95 / p99 ms",
            [f"{x['p50_ms']:.1f} / {x['p95_ms']:.1f} / {x['p99_ms']:.1f}" for x in light],
            f"p50 {TARGETS['p50']}",
        ),
        (
            "worker CPU per message, ms (bulk run)",
            [f"{r['worker_cpu_s_per_msg'] * 1000:.2f}" for r in s],
            TARGETS["cpu"],
        ),
        (
            "worker CPU per message, ms (send_sms loop)",
            [f"{r['single_worker_cpu_s_per_msg'] * 1000:.2f}" if "single_worker_cpu_s_per_msg" in r else "" for r in s],
            "",
        ),
        ("sandbox CPU per message, ms (bulk run)", [f"{r['sandbox_cpu_s_per_msg'] * 1000:.2f}" for r in s], ""),
        ("baseline worker CPU per message, ms", [f"{r['baseline_worker_cpu_s_per_msg'] * 1000:.2f}" for r in s], ""),
        ("peak worker RSS, MB (max over processes)", [f"{r['worker_peak_rss_mb']:.0f}" for r in s], TARGETS["rss"]),
        ("peak baseline worker RSS, MB", [f"{r['baseline_peak_rss_mb']:.0f}" for r in s], ""),
        (
            "jobs not `sent` (bulk + single)",
            [str(sum(r["bulk_failed"].values()) + sum(r["single_failed"].values())) for r in s],
            "0",
        ),
    ]
    if len(s) > 1:
        ratio = s[-1]["single_msgs_per_s"] / s[0]["single_msgs_per_s"]
        out.append(
            (
                f"send_sms loop at {s[-1]['latency_ms']} ms vs {s[0]['latency_ms']} ms",
                ["", f"{ratio:.2f}"] + [""] * (len(s) - 2),
                TARGETS["single_cost"],
            )
        )
    mem = s[0]
    out.append(
        (
            "Redis bytes per sent record (incl. msgid index)",
            [
                f"{mem['redis_bytes_per_record']:,.0f} (hash {mem['redis_job_hash_bytes']}, "
                f"msgid {mem['redis_msgid_key_bytes']})"
            ]
            + [""] * (len(s) - 1),
            TARGETS["redis"],
        )
    )
    out.append(
        (
            "  same, raw used_memory growth incl. client buffers",
            [f"{mem['redis_used_memory_delta_per_record']:,.0f}"] + [""] * (len(s) - 1),
            "",
        )
    )
    return out


def _cell(run: dict | None) -> str:
    return f"{run['msgs_per_s']:,.0f} msg/s, {run['worker_cpu_s_per_msg'] * 1000:.2f} ms CPU" if run else ""


def cost_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(cost, off, on, price) for each cost priced by a flipped run, and the run to `delivered`."""
    out = []
    for name, entry in results.get("costs", {}).items():
        if not entry.get("supported"):
            out.append((name, "no switch in this build", "", ""))
            continue
        off, on = entry.get("off"), entry.get("on")
        price = ""
        if off and on:
            price = (
                f"{on['msgs_per_s'] / off['msgs_per_s'] - 1:+.0%} msg/s, "
                f"{(on['worker_cpu_s_per_msg'] - off['worker_cpu_s_per_msg']) * 1000:+.2f} ms CPU/msg"
            )
        out.append((f"{name} ({entry['latency_ms']} ms)", _cell(off), _cell(on), price))
    return out


def delivered_rows(results: dict) -> list[tuple[str, str]]:
    d = results.get("delivered")
    if not d:
        return []
    out = []
    for key in ("forwarding_off", "forwarding_on"):
        r = d.get(key)
        if not r:
            continue
        out.append(
            (
                f"send_bulk to `delivered` at {d['latency_ms']} ms, receipts on, {key.replace('_', ' ')}",
                (
                    f"{r['msgs_per_s']:,.0f} msg/s; worker CPU {r['worker_cpu_s_per_msg'] * 1000:.2f} ms/msg, "
                    f"receiver {r['receiver_cpu_s_per_msg'] * 1000:.2f}, sandbox "
                    f"{r['sandbox_cpu_s_per_msg'] * 1000:.2f}; not delivered {sum(r['failed'].values())}; "
                    f"forwards received {r['forwards_received']:,}"
                ),
            )
        )
    return out


def print_table(results: dict, file=None) -> None:
    console = Console(file=file, width=160)
    m = results["machine"]
    console.print(
        f"cosmos-sms benchmark: {results['messages']:,} messages; {m['nproc']} cores "
        f"({m['cpu_model']}), Python {m['python']}, load average at start "
        f"{', '.join(map(str, m['load_avg_at_start']))}, at end "
        f"{', '.join(map(str, m.get('load_avg_at_end', [])))}"
    )
    table = Table()
    table.add_column("figure")
    for r in results["scenarios"]:
        table.add_column(f"sandbox latency {r['latency_ms']} ms", justify="right")
    table.add_column("target")
    for name, cells, target in rows(results):
        table.add_row(name, *cells, target)
    console.print(table)
    states = results.get("states", {})
    console.print(
        "main runs: "
        + ", ".join(f"{k} {'n/a' if v is None else 'on' if v else 'off'}" for k, v in states.items())
        + f" (AOF appendfsync as shipped: {results.get('appendfsync_shipped', '?')})"
    )
    priced = cost_rows(results)
    if priced:
        costs = Table(title="each cost off and on (send_bulk end to end, worker CPU per message)")
        for column in ("cost", "off", "on", "price of on"):
            costs.add_column(column)
        for row in priced:
            costs.add_row(*row)
        console.print(costs)
    for name, cell in delivered_rows(results):
        console.print(f"{name}: {cell}")


def markdown(results: dict) -> str:
    """The same figures as a Markdown table, for the README."""
    s = results["scenarios"]
    lines = [
        "| figure | " + " | ".join(f"sandbox latency {r['latency_ms']} ms" for r in s) + " | target |",
        "| --- | " + " | ".join("---:" for _ in s) + " | --- |",
    ]
    lines += [f"| {name} | " + " | ".join(cells) + f" | {target} |" for name, cells, target in rows(results)]
    priced = cost_rows(results)
    if priced:
        lines += ["", "| cost | off | on | price of on |", "| --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(row) + " |" for row in priced]
    delivered = delivered_rows(results)
    if delivered:
        lines.append("")
        lines += [f"- {name}: {cell}" for name, cell in delivered]
    return "\n".join(lines)
