"""How long one call of ours holds Redis, as Redis itself times it (SLOWLOG): an enqueue step of
`send_bulk`, a retention sweep step, a reconciler claim step and a release step of scheduled jobs.

    python -m bench.redis_hold                   # 3 calls of 100,000 messages on an idle private Redis
    python -m bench.redis_hold --messages 20000 --calls 1
    python -m bench.redis_hold --messages 1000000 --calls 0   # only the release of a million scheduled jobs

Nothing else runs against this Redis, so the figures are the scripts' own cost, not the
machine's scheduling: every command over 1 ms is logged, and the report gives p50 / p99 / max
per command (ledger scripts by name; every script is listed, `count` 0 when no call took 1 ms). For the
sweep and the claim, 1,000 dead jobs (retention 1 s), 1,000 due retries and 1,000 waiting jobs past their
deadline are made per round, then one sweep step and claim steps until nothing is left. For the
release, `--messages` jobs are scheduled for the same second and released, the clock moved past it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.processes import start_redis
from config.settings import load_settings
from ledger.schema import CLAIM_STEP, ENQUEUE_STEP, EXPIRE_STEP, RELEASE_STEP, STEP, SWEEP_STEP
from ledger.scripts import SCRIPT_NAMES, Scripts
from ledger.store import Ledger, NewJob
from producers.producer import SmsProducer

SLOWLOG_US = 1_000


def slow_entries(client: redis.Redis, most: int = 100_000) -> list[tuple[str, float]]:
    """The slow log as (command, ms), ledger scripts named (`EVALSHA enqueue`); then emptied."""
    names = {sha: name for name, sha in Scripts(client).shas.items()}
    entries = []
    for entry in client.slowlog_get(most):
        command = entry["command"]  # bytes, even on a client that decodes replies
        words = (command.decode(errors="replace") if isinstance(command, bytes) else str(command)).split()
        name = words[0].upper() if words else "?"
        if name == "EVALSHA" and len(words) > 1:
            name = f"EVALSHA {names.get(words[1], words[1][:8])}"
        entries.append((name, entry["duration"] / 1000))
    client.slowlog_reset()
    return entries


def holds(client: redis.Redis) -> dict[str, dict[str, float]]:
    """p50 / p99 / max ms and count per command in the slow log (ledger scripts by name)."""
    by_command: dict[str, list[float]] = {}
    for name, ms in slow_entries(client):
        by_command.setdefault(name, []).append(ms)
    out: dict[str, dict[str, float]] = {f"EVALSHA {name}": {"count": 0} for name in SCRIPT_NAMES}  # none over 1 ms
    for name, values in sorted(by_command.items()):
        values.sort()
        out[name] = {
            "count": len(values),
            "p50_ms": round(values[len(values) // 2], 2),
            "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
            "max_ms": round(values[-1], 2),
        }
    return out


def leased(ledger: Ledger, count: int) -> list[tuple[str, str]]:
    """`count` jobs recorded and leased for one attempt each: (job id, owner)."""
    jobs = [
        NewJob(uuid.uuid4().hex, "bulk", "033334445566770", "F", "x", None, False, None, "fp", 3600)
        for _ in range(count)
    ]
    pairs = [(job.job_id, f"owner-{i}") for i, job in enumerate(jobs)]
    for start in range(0, count, ENQUEUE_STEP):
        ledger.enqueue(jobs[start : start + ENQUEUE_STEP])
        step = pairs[start : start + ENQUEUE_STEP]
        ledger.begin_many([j for j, _ in step], [o for _, o in step], count_delivery=False)
    return pairs


def sweep_and_claim(ledger: Ledger) -> None:
    """One sweep step over records whose retention ended; claim steps over due retries and over waiting
    jobs past their deadline, until none is left."""
    ledger.finish_many(
        [ledger.finish_args(j, o, "permanent", status="failed", http=400) for j, o in leased(ledger, STEP)]
    )
    ledger.finish_many([ledger.finish_args(j, o, "defer", delay_s=0) for j, o in leased(ledger, STEP)])
    waiting = [
        NewJob(uuid.uuid4().hex, "bulk", "033334445566770", "F", "x", None, False, None, "fp", 0.5) for _ in range(STEP)
    ]
    for start in range(0, STEP, ENQUEUE_STEP):
        ledger.enqueue(waiting[start : start + ENQUEUE_STEP])
    time.sleep(ledger.settings.retention_s + 0.5)  # a measurement, not a test: let the retention end
    ledger.sweep()
    while True:
        picked, more_expired = ledger.claim(CLAIM_STEP)
        if len(picked) < CLAIM_STEP and not more_expired:
            break


def schedule_and_release(url: str, messages: int) -> None:
    """`messages` jobs scheduled for one second a minute ahead, then released with the clock past it."""
    settings = {"redis_url": url, "redis_prefix": "hold-release", "api_key": "k", "api_secret": "s", "testing": True}
    producer = SmsProducer(load_settings(**settings))
    send_at = datetime.fromtimestamp(producer.ledger.now() + 60, UTC)
    for start in range(0, messages, 100_000):
        producer.send_bulk(
            [
                {"to": "033334445566770", "sender": "Bench", "text": str(i), "send_at": send_at}
                for i in range(start, min(messages, start + 100_000))
            ]
        )
    producer.redis.slowlog_reset()  # the release only
    later = Ledger(producer.redis, load_settings(**settings, test_clock_offset_s=120))
    while later.release_due():
        pass


def run(messages: int, calls: int, work_dir: Path) -> dict[str, Any]:
    service, url = start_redis(work_dir)
    try:
        client = redis.Redis.from_url(url)
        client.config_set("slowlog-log-slower-than", SLOWLOG_US)
        client.config_set("slowlog-max-len", 100_000)
        client.slowlog_reset()
        producer = SmsProducer(load_settings(redis_url=url, redis_prefix="hold", api_key="k", api_secret="s"))
        for call in range(calls):
            producer.send_bulk(
                [{"to": "033334445566770", "sender": "Bench", "text": f"campaign {call} {i}"} for i in range(messages)],
                batch_id=f"hold-{call}",
            )
        for _ in range(calls):
            sweep_and_claim(Ledger(client, load_settings(redis_url=url, redis_prefix="hold-sweep", retention_s=1)))
        over_1ms = holds(client)
        schedule_and_release(url, messages)
        return {
            "messages_per_call": messages,
            "calls": calls,
            "enqueue_step": ENQUEUE_STEP,
            "sweep_step": SWEEP_STEP,
            "claim_step": CLAIM_STEP,
            "expire_step": EXPIRE_STEP,
            "release_step": RELEASE_STEP,
            "over_1ms": over_1ms,
            "release_over_1ms": holds(client),
        }
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per send_bulk call")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-hold-") as tmp:
        print(json.dumps(run(args.messages, args.calls, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
