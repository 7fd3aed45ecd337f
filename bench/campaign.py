"""The campaign-scale benchmark: a campaign of N messages (send_bulk calls of 100,000) against the
sandbox at 0 ms, with one-time codes sent through it, while Redis latency is watched.

    python -m bench.campaign --count 1000000        # by hand; figures go in the README
    python -m bench.campaign --count 10000 --json   # the CI smoke run (tests/test_campaign_smoke.py)

Reports: enqueue rate; Redis PING p99.9 and max during the enqueue, and Redis's own slow log (the
commands that held the server longest, as Redis timed them); send_sms p99 and enqueue->sent p99
for one single every 100 ms; a single that fails once, sent within its backoff + 1 s; Redis bytes
per record with each index's share; time to drain; peak worker RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import redis

from bench.processes import RssSampler, cosmos_cmd, free_port, spawn, start_redis, wait_for
from bench.redis_hold import slow_entries
from cli.worker_command import default_bulk_processes
from config.keys import Keys
from config.settings import Settings
from producers.producer import SmsProducer
from sandbox.control import SandboxControl

CAMPAIGN_TO = "033334445566770"
SINGLE_TO = "033334445566779"
FAIL_ONCE_TO = "033334445566778"
CALL_SIZE = 100_000
BACKOFF_BASE_S = 0.5


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ping_loop(url: str, halt: Any, out: Any) -> None:
    """PING Redis every 5 ms on its own connection, in a process of its own (no GIL shared with the
    producer); sends every latency (ms) back at the end."""
    client = redis.Redis.from_url(url)
    latencies: list[float] = []
    out.put("ready")
    while not halt.wait(0.005):
        started = time.perf_counter()
        client.ping()
        latencies.append((time.perf_counter() - started) * 1000)
    out.put(latencies)


def singles_loop(env: dict[str, str], halt: Any, out: Any) -> None:
    """One send_sms every 100 ms, as an application process would: (job id, enqueue time, call ms)."""
    producer = SmsProducer(settings_from(env))
    jobs: list[tuple[str, float, float]] = []
    out.put("ready")
    while not halt.wait(0.1):
        started = time.time()
        job_id = producer.send_sms(SINGLE_TO, "Bench", f"code {len(jobs)}")
        jobs.append((job_id, started, (time.time() - started) * 1000))
    out.put(jobs)


def settings_from(env: dict[str, str]) -> Settings:
    # Any: Settings parses each setting from its string, whatever the field's type.
    values: dict[str, Any] = {k: v for k, v in env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"}
    return Settings(_env_file=None, **values)


class Probe:
    """A loop in a child process, stopped on demand, returning what it measured."""

    def __init__(self, target: Any, *args: Any):
        ctx = multiprocessing.get_context("spawn")
        self.halt, self.out = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=target, args=(*args, self.halt, self.out), daemon=True)
        self.proc.start()
        assert self.out.get(timeout=60) == "ready"

    def stop(self) -> Any:
        self.halt.set()
        result = self.out.get(timeout=30)
        self.proc.join(10)
        return result


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _sent(producer: SmsProducer, batch_id: str) -> int:
    """How many of a batch's messages are sent; every batch was recorded before the wait starts."""
    batch = producer.get_batch(batch_id)
    if batch is None:
        raise RuntimeError(f"batch {batch_id} is not in the ledger")
    return int(batch["states"].get("sent", 0))


SLOWLOG_US = 5_000
"""Commands Redis spends longer than this on (5 ms) are logged by Redis itself."""


def slow_commands(client: redis.Redis) -> dict[str, Any]:
    """What Redis's slow log holds since the last call (which empties it): count, longest, and by command."""
    entries = slow_entries(client, 1024)
    by_command: dict[str, float] = {}
    for name, ms in entries:
        by_command[name] = max(by_command.get(name, 0.0), ms)
    return {
        "over_5ms": len(entries),
        "over_20ms": sum(ms > 20 for _, ms in entries),
        "max_ms": round(max((ms for _, ms in entries), default=0), 2),
        "max_ms_by_command": {k: round(v, 2) for k, v in sorted(by_command.items())},
    }


def memory_shares(client: redis.Redis, keys: Keys, records: int) -> dict[str, Any]:
    """Bytes per record in all, and the share of each index the project ships."""
    used = int(client.info("memory")["used_memory"])
    shares = {}
    for name, key in (
        ("created index", keys.created),
        ("number index", keys.by_number(CAMPAIGN_TO)),
        ("outbox", keys.outbox("bulk")),
        ("deadlines", keys.deadlines),
        ("retention", keys.retention),
        ("awaiting receipts", keys.awaiting),
        ("events stream", keys.events),
    ):
        shares[name] = round((client.memory_usage(key, samples=0) or 0) / max(1, records), 1)
    sample = cast(list[str], client.zrange(keys.created, 0, 99))  # decode_responses: members are str
    per_hash = [client.memory_usage(keys.job(job_id), samples=0) or 0 for job_id in sample]
    shares["record hash"] = round(statistics.mean(per_hash), 1) if per_hash else 0
    msgids = [cast(str | None, client.hget(keys.job(job_id), "message_id")) for job_id in sample]  # decoded
    per_msgid = [client.memory_usage(keys.message_id(m), samples=0) or 0 for m in msgids if m]
    shares["message_id index"] = round(statistics.mean(per_msgid), 1) if per_msgid else 0
    return {"used_memory_bytes": used, "per_record_bytes": round(used / max(1, records), 1), "shares": shares}


def run(count: int, work_dir: Path, processes: int) -> dict[str, Any]:
    redis_service, url = start_redis(work_dir)
    services = [redis_service]
    try:
        sandbox_port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": url,
            "COSMOS_REDIS_PREFIX": "campaign",
            "COSMOS_API_KEY": "bench-key",
            "COSMOS_API_SECRET": "bench-secret",
            "COSMOS_API_URL": f"http://127.0.0.1:{sandbox_port}/v1.0",
            "COSMOS_RETRY_BACKOFF_BASE_S": str(BACKOFF_BASE_S),
            "COSMOS_LOG_LEVEL": "INFO",
            "COSMOS_LOG_FORMAT": "json",
        }
        sandbox = spawn("sandbox", cosmos_cmd("sandbox", "--port", str(sandbox_port)), env, work_dir)
        services.append(sandbox)
        control = SandboxControl(f"http://127.0.0.1:{sandbox_port}")
        wait_for(control.answers, 20, "the sandbox")
        workers = spawn("workers", cosmos_cmd("worker", "--processes", str(processes)), env, work_dir)
        services.append(workers)
        rss = RssSampler([workers.proc.pid])
        rss.start()
        producer = SmsProducer(settings_from(env))
        wait_for(lambda: "ready" in workers.log(), 60, "the workers")
        client = redis.Redis.from_url(url, decode_responses=True)
        client.config_set("slowlog-log-slower-than", SLOWLOG_US)
        client.config_set("slowlog-max-len", 1024)
        client.slowlog_reset()

        pinger, singles = Probe(ping_loop, url), Probe(singles_loop, env)
        started = time.monotonic()
        ids: list[str] = []
        fail_once: tuple[str, float] | None = None
        for call in range(0, count, CALL_SIZE):
            size = min(CALL_SIZE, count - call)
            ids += producer.send_bulk(
                [{"to": CAMPAIGN_TO, "sender": "Bench", "text": f"campaign {call + i}"} for i in range(size)],
                batch_id=f"campaign-{call // CALL_SIZE}",
            )
            if fail_once is None:
                control.script(FAIL_ONCE_TO, "internal_error", "ok")
                fail_once = (producer.send_sms(FAIL_ONCE_TO, "Bench", "fails once"), time.time())
        enqueue_s = time.monotonic() - started
        pings = pinger.stop()
        slow_enqueue = slow_commands(client)
        memory_queued = memory_shares(client, producer.keys, count)

        def drained() -> bool:
            workers.check_alive()
            queued = producer.ledger.redis.hget(producer.keys.counters, "state:queued")
            return int(queued or 0) == 0 and all(
                _sent(producer, f"campaign-{c}") == min(CALL_SIZE, count - c * CALL_SIZE)
                for c in range((count + CALL_SIZE - 1) // CALL_SIZE)
            )

        wait_for(drained, max(120, count / 200), "the campaign to drain", interval=0.5)
        drain_s = time.monotonic() - started
        slow_drain = slow_commands(client)
        jobs = singles.stop()
        rss.stop()
        records = producer.ledger.get_many([job_id for job_id, _, _ in jobs])
        to_sent = [
            (epoch(r["sent_at"]) - started_at) * 1000
            for r, (_, started_at, _) in zip(records, jobs)
            if r and r.get("sent_at")
        ]
        calls_ms = [ms for _, _, ms in jobs]
        assert fail_once is not None
        record = producer.get_status(fail_once[0]) or {}
        return {
            "count": count,
            "enqueue_msg_per_s": round(count / enqueue_s),
            "redis_ping_ms": {
                "p99.9": round(percentile(pings, 0.999), 2),
                "max": round(max(pings, default=0), 2),
                "samples": len(pings),
            },
            "redis_slowlog_enqueue": slow_enqueue,
            "redis_slowlog_drain": slow_drain,
            "single_send_sms_ms": {"p99": round(percentile(calls_ms, 0.99), 2), "calls": len(calls_ms)},
            "single_enqueue_to_sent_ms": {
                "p50": round(percentile(to_sent, 0.5), 1),
                "p99": round(percentile(to_sent, 0.99), 1),
                "sent": len(to_sent),
            },
            "fail_once": {
                "state": record.get("state"),
                "history": [h["status"] for h in record.get("history", [])],
                "enqueue_to_sent_s": round(epoch(record["sent_at"]) - fail_once[1], 2)
                if record.get("sent_at")
                else None,
                "bound_s": BACKOFF_BASE_S * 2 + 1,
            },
            "memory_queued": memory_queued,
            "memory_sent": memory_shares(client, producer.keys, count),
            "drain_s": round(drain_s, 1),
            "worker_peak_rss_mb": round(rss.peak_mb, 1),
        }
    finally:
        for service in reversed(services):
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument(
        "--processes", type=int, default=default_bulk_processes(), help="bulk-lane processes (default: as shipped)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-campaign-") as tmp:
        figures = run(args.count, Path(tmp), args.processes)
    print(json.dumps(figures, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
