"""Micro benchmark: CPU per outcome write, `Ledger.finish` direct vs the batching `OutcomeWriter`.

    .venv/bin/python -m bench.outcome_cpu [--jobs 6000] [--threads 64] [--linger-ms 0,1]

N jobs are recorded and leased, then T threads record one accepted outcome each, with a
pause between writes that stands in for the HTTP request. Reported per outcome: this process's
CPU (every thread) and the private Redis server's CPU, and the outcomes per round trip.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from bench.processes import start_redis
from config.settings import load_settings
from ledger.store import Ledger, NewJob
from worker.outcome_writer import OutcomeWriter

LEASE_BATCH = 500


def leased(ledger: Ledger, count: int) -> list[tuple[str, str]]:
    out = []
    for start in range(0, count, LEASE_BATCH):
        jobs = [
            NewJob(uuid.uuid4().hex, "bulk", "033334445566770", "F", "x", None, False, None, "fp", 3600)
            for _ in range(min(LEASE_BATCH, count - start))
        ]
        ledger.enqueue(jobs)
        owners = [f"o-{j.job_id[:8]}" for j in jobs]
        ledger.begin_many([j.job_id for j in jobs], owners, count_delivery=False)
        out += [(j.job_id, o) for j, o in zip(jobs, owners)]
    return out


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def run(ledger: Ledger, finish, jobs: list[tuple[str, str]], threads: int, pause_s: float) -> dict:
    def one(job: tuple[str, str]) -> None:
        time.sleep(pause_s)  # stands in for the HTTP request (not synchronisation)
        finish(job[0], job[1], "accepted", status="ok", http=200, latency_ms=1, message_id=f"Az_{job[0][:8]}")

    cpu, server, wall = time.process_time(), redis_cpu(ledger.redis), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, jobs))
    cpu, server, wall = time.process_time() - cpu, redis_cpu(ledger.redis) - server, time.perf_counter() - wall
    return {
        "client_cpu_us": cpu / len(jobs) * 1e6,
        "redis_cpu_us": server / len(jobs) * 1e6,
        "outcomes_per_s": len(jobs) / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outcome_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--pause-ms", type=float, default=5.0, help="per write, standing in for the request")
    parser.add_argument("--linger-ms", default="0,1", help="writer linger values to try, comma-separated")
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="cosmos-outcome-cpu-"))
    service, url = start_redis(work_dir)
    try:
        client = redis.Redis.from_url(url, decode_responses=True, max_connections=args.threads + 8)
        ledger = Ledger(client, load_settings(redis_url=url, redis_prefix="bench-outcomes"))
        modes = [("direct", None)] + [(f"writer linger {x} ms", float(x)) for x in args.linger_ms.split(",")]
        for name, linger_ms in modes:
            jobs = leased(ledger, args.jobs)
            writer = OutcomeWriter(ledger, linger_s=linger_ms / 1000) if linger_ms is not None else None
            row = run(ledger, writer.finish if writer else ledger.finish, jobs, args.threads, args.pause_ms / 1000)
            per_trip = f" {writer.outcomes / max(1, writer.batches):5.1f} outcomes/round trip" if writer else ""
            if writer:
                writer.stop()
            print(
                f"{name:20} client {row['client_cpu_us']:6.0f} µs/outcome, redis {row['redis_cpu_us']:5.0f} "
                f"µs/outcome, {row['outcomes_per_s']:6.0f}/s{per_trip}",
                file=sys.stderr,
                flush=True,
            )
            client.flushdb()
    finally:
        service.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
