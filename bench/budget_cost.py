"""What budgets cost inside Redis: `begin` and an accepting `finish` with and without daily caps.

    python -m bench.budget_cost                  # 3 alternating rounds of 2,000 jobs each way
    python -m bench.budget_cost --jobs 10000 --rounds 5

Every command is timed by Redis itself (SLOWLOG at 0 µs) on an idle private Redis, so the figures
are the scripts' own cost. With caps set, `begin` reads the day's hash once and an acceptance adds
two HINCRBY and an EXPIREAT (the count is kept with or without caps, for `spend_today`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

import redis

from bench.processes import start_redis
from config.settings import load_settings
from ledger.schema import ENQUEUE_STEP
from ledger.scripts import Scripts
from ledger.store import Ledger, NewJob

CAPS = {"daily_message_cap": 10**9, "daily_budget": 10**6}
"""Caps never reached: every check runs, nothing pauses."""


def script_times_us(client: redis.Redis) -> dict[str, list[float]]:
    """Microseconds per ledger script call in the slow log, by script name; then emptied."""
    names = {sha: name for name, sha in Scripts(client).shas.items()}
    out: dict[str, list[float]] = {}
    for entry in client.slowlog_get(1_000_000):
        words = entry["command"].decode(errors="replace").split()
        if len(words) > 1 and words[0].upper() == "EVALSHA" and words[1] in names:
            out.setdefault(names[words[1]], []).append(float(entry["duration"]))
    client.slowlog_reset()
    return out


def one_round(client: redis.Redis, url: str, jobs: int, capped: bool) -> dict[str, float]:
    settings = load_settings(
        redis_url=url, redis_prefix=f"b{uuid.uuid4().hex[:6]}", api_key="k", api_secret="s", **(CAPS if capped else {})
    )
    ledger = Ledger(client, settings)
    new = [
        NewJob(uuid.uuid4().hex, "bulk", "033334445566770", "F", "x", None, False, None, "fp", 3600)
        for _ in range(jobs)
    ]
    for start in range(0, jobs, ENQUEUE_STEP):
        ledger.enqueue(new[start : start + ENQUEUE_STEP])
    client.slowlog_reset()
    for start in range(0, jobs, ENQUEUE_STEP):
        step = [job.job_id for job in new[start : start + ENQUEUE_STEP]]
        ledger.begin_many(step, step, count_delivery=False)
        ledger.finish_many(
            [ledger.finish_args(j, j, "accepted", status="ok", http=200, message_id=f"m{j}", price=0.01) for j in step]
        )
    times = script_times_us(client)
    return {name: statistics.mean(times[name]) for name in ("begin", "finish")}


def run(jobs: int, rounds: int, work_dir: Path) -> dict[str, Any]:
    service, url = start_redis(work_dir)
    try:
        client = redis.Redis.from_url(url)
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", 4 * jobs)
        results: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
        for _ in range(rounds):
            results["without"].append(one_round(client, url, jobs, capped=False))
            results["with"].append(one_round(client, url, jobs, capped=True))
        return {
            "jobs_per_round": jobs,
            "rounds": rounds,
            "mean_us_per_call (median of rounds)": {
                way: {name: round(statistics.median(r[name] for r in rs), 1) for name in ("begin", "finish")}
                for way, rs in results.items()
            },
        }
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-budget-") as tmp:
        print(json.dumps(run(args.jobs, args.rounds, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
