"""How long each ledger script holds Redis, as Redis itself times it (SLOWLOG), at scale.

    python -m bench.redis_hold                       # 1,000,000 records, then every script called on them
    python -m bench.redis_hold --records 100000 --sample 1000

On an idle private Redis, with `slowlog-log-slower-than 0` so that every call is timed (the log
is read and emptied after each step, before it can overflow): `--records` jobs are recorded with
`send_bulk` (the enqueue steps are measured as they fill the server, those over 100 µs: at 0 Redis
would log every command inside every call too; archiving is on, so finished
records wait for the archive as in production), then each other script of `ledger/lua` is called
the way its caller does, `--sample` times or in steps over `--sample` jobs, on that full server.
The report gives count / p50 / p99 / max per script and whether it keeps to the goal
(p99 <= 10 ms, max <= 20 ms); a script no step called is listed as not exercised.
JSON on stdout, the table (Markdown) on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.processes import start_redis
from config.settings import Settings, load_settings
from ledger.forwards import MAX_STEP, Forwards
from ledger.schema import ARCHIVE_STEP, STEP, batch_job_id, row_args
from ledger.scripts import SCRIPT_NAMES, ScriptCalls, Scripts
from ledger.store import Ledger, NewJob
from producers.events import EventReader
from producers.producer import SmsProducer

GOAL_P99_MS = 10.0
GOAL_MAX_MS = 20.0
SLOWLOG_LEN = 200_000
POPULATE_US = 100
BULK_CALL = 100_000
NUMBER = "033334445566770"


def slow_entries(client: redis.Redis, most: int = SLOWLOG_LEN) -> list[tuple[str, float]]:
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
    client.slowlog_reset()  # only this process talks to this Redis: nothing is lost in between
    return entries


class Holds:
    """Every script call's hold in ms, by script, read off the slow log before it can overflow.

    Redis 7 logs the commands a script runs as well as the script: only script calls are kept.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self.phase = ""
        """What the calls collected next were doing (one script can be called in several ways)."""
        self.samples: dict[str, dict[str, list[float]]] = {}
        client.config_set("slowlog-max-len", SLOWLOG_LEN)
        self.threshold(0)

    def threshold(self, us: int) -> None:
        """Log calls slower than `us` (0: every call)."""
        self.client.config_set("slowlog-log-slower-than", us)
        self.client.slowlog_reset()

    def collect(self) -> None:
        entries = slow_entries(self.client)
        if len(entries) >= SLOWLOG_LEN:
            raise RuntimeError("the slow log overflowed between two reads: collect more often")
        for name, ms in entries:
            if name.startswith("EVALSHA "):
                self.samples.setdefault(name, {}).setdefault(self.phase, []).append(ms)

    def report(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self.samples):
            phases = self.samples[name]
            out[name] = _figures([ms for values in phases.values() for ms in values])
            if len(phases) > 1:
                out[name]["by_phase"] = {phase: _figures(values) for phase, values in sorted(phases.items())}
        for name in SCRIPT_NAMES:
            out.setdefault(f"EVALSHA {name}", {"count": 0, "within_goal": None})  # no step called it
        return out


def _figures(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return {
        "count": len(values),
        "p50_ms": round(values[len(values) // 2], 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(values[-1], 3),
        "within_goal": p99 <= GOAL_P99_MS and values[-1] <= GOAL_MAX_MS,
    }


def settings_for(url: str, **more: Any) -> Settings:
    return load_settings(redis_url=url, redis_prefix="hold", api_key="k", api_secret="s", **more)


def steps(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def populate(producer: SmsProducer, records: int, holds: Holds, progress: Callable[[str], None]) -> list[str]:
    """`records` jobs in bulk calls of BULK_CALL (each its own batch); returns the batch ids.

    The slow log takes enqueue calls over POPULATE_US only here: at 0 it would log every command inside
    every call (some 15 per job); an enqueue step of 250 jobs takes longer than that anyway."""
    batches = []
    holds.threshold(POPULATE_US)
    holds.phase = "send_bulk (steps of 250)"
    for start in range(0, records, BULK_CALL):
        batch = f"hold-{start // BULK_CALL}"
        producer.send_bulk(
            [
                {"to": NUMBER, "sender": "Bench", "text": f"Your code is {i:06d}", "idempotency_key": f"k{i}"}
                for i in range(start, min(records, start + BULK_CALL))
            ],
            batch_id=batch,
        )
        holds.collect()
        batches.append(batch)
        progress(f"recorded {min(records, start + BULK_CALL):,} jobs")
    holds.threshold(0)
    return batches


def lease_and_finish(ledger: Ledger, ids: list[str], holds: Holds) -> list[tuple[str, str]]:
    """begin, recheck, finish (accepted) and receipt over `ids`; returns (job, message id) delivered."""
    delivered = []
    for chunk in steps(ids, STEP):
        owners = [f"o-{uuid.uuid4().hex[:8]}" for _ in chunk]
        ledger.begin_many(chunk, owners, count_delivery=True)
        for job_id, owner in list(zip(chunk, owners))[:50]:
            ledger.recheck(job_id, owner, probe=False)
        ids_msg = [(job_id, f"m-{job_id}") for job_id in chunk]
        ledger.finish_many(
            [
                ledger.finish_args(j, o, "accepted", status="sent", http=200, latency_ms=80, message_id=m, price=0.01)
                for (j, m), o in zip(ids_msg, owners)
            ]
        )
        for job_id, message_id in ids_msg:
            ledger.apply_receipt(
                job_id, to=NUMBER, status="delivered", message_id=message_id, price=0.01, timestamp=str(time.time())
            )
        delivered += ids_msg
        holds.collect()
    return delivered


def operate(ledger: Ledger, queued: list[str], delivered: list[str], holds: Holds) -> None:
    """Every operator action, on queued jobs and on delivered ones."""
    for chunk in steps(queued, STEP):
        ledger.operate_many("cancel", chunk, by="bench")
        ledger.operate_many("requeue", chunk, by="bench")
        holds.collect()
    for chunk in steps(delivered, STEP):
        ledger.operate_many("resend", chunk, by="bench")
        ledger.operate_many("cancel", chunk, by="bench")
        ledger.operate_many("mark_sent", chunk, by="bench")
        ledger.operate_many("withdraw", chunk, by="bench")
        ledger.operate_many("purge", chunk, by="bench")
        holds.collect()


def redact(ledger: Ledger, job_ids: list[str], holds: Holds) -> None:
    for job_id in job_ids:
        ledger.redact(job_id, NUMBER, {"to": "0333xxxxxxx770", "text": "", "idem": "", "callback": ""})
    holds.collect()


def take(producer: SmsProducer, ledger: Ledger, count: int, holds: Holds) -> None:
    """Single-lane jobs, each taken by a task with the slots a worker has free (the rest ride along)."""
    holds.phase = "send_sms"
    ids = [producer.send_sms(NUMBER, "Bench", f"single {i}") for i in range(count)]
    holds.collect()
    holds.phase = "take"
    taken: set[str] = set()
    for job_id in ids:
        if job_id in taken:
            continue
        _, rode = ledger.take(job_id, f"t-{uuid.uuid4().hex[:8]}", ledger.settings.bulk_chunk_size - 1)
        taken.update(job for job, _, _ in rode)
    holds.collect()


def sweep_and_claim(url: str, ledger: Ledger, count: int, holds: Holds) -> None:
    """Records past their retention swept; due retries and waiting jobs past their deadline claimed;
    then reconciler ticks with nothing due, and the republishing ticks after a Redis restart."""
    holds.phase = "making records to sweep and claim"
    short = Ledger(ledger.redis, settings_for(url, retention_s=1))
    jobs = [NewJob(uuid.uuid4().hex, "bulk", NUMBER, "F", "x", None, False, None, "fp", 3600) for _ in range(2 * count)]
    for chunk in steps(jobs, 250):
        short.enqueue(chunk)
    for half, kind in ((jobs[:count], "permanent"), (jobs[count:], "defer")):
        for chunk in steps([j.job_id for j in half], STEP):
            owners = [f"o-{i}" for i in range(len(chunk))]
            short.begin_many(chunk, owners, count_delivery=False)
            extra = {"status": "failed", "http": 400} if kind == "permanent" else {"delay_s": 0}
            short.finish_many([short.finish_args(j, o, kind, **extra) for j, o in zip(chunk, owners)])
    waiting = [NewJob(uuid.uuid4().hex, "bulk", NUMBER, "F", "x", None, False, None, "fp", 0.5) for _ in range(count)]
    for chunk in steps(waiting, 250):
        ledger.enqueue(chunk)
    holds.collect()
    time.sleep(1.5)  # a measurement, not a test: let the retention and the deadlines pass
    holds.phase = "1,000 records past retention"
    while short.sweep():
        holds.collect()
    holds.phase = "1,000 due retries, 1,000 past deadline"
    while True:
        picked, more = ledger.claim()
        holds.collect()
        if not picked and not more:
            break
    holds.phase = "nothing due"
    for _ in range(200):
        ledger.claim()
    holds.collect()
    holds.phase = "after a Redis restart (republish queued)"
    for i in range(200):
        ledger.claim(restarted=True)
        if i % 20 == 0:
            holds.collect()
    holds.collect()


def release(url: str, producer: SmsProducer, count: int, holds: Holds) -> None:
    """`count` jobs scheduled for one second a minute ahead, released with the clock moved past it."""
    holds.phase = "scheduled send_bulk"
    send_at = datetime.fromtimestamp(producer.ledger.now() + 60, UTC)
    producer.send_bulk([{"to": NUMBER, "sender": "Bench", "text": str(i), "send_at": send_at} for i in range(count)])
    holds.collect()
    holds.phase = "release"
    later = Ledger(producer.redis, settings_for(url, testing=True, test_clock_offset_s=120))
    while later.release_due():
        pass
    holds.collect()


def archived(ledger: Ledger, holds: Holds) -> None:
    while pairs := ledger.archive_pending(ARCHIVE_STEP):
        if not ledger.archived(pairs):
            break
        holds.collect()


def small_scripts(ledger: Ledger, batches: list[str], count: int, holds: Holds) -> None:
    """batch_close (known and unknown batches) and lock_release (held and lost locks)."""
    for batch in batches:
        ledger.close_batch(batch)
    for i in range(count):
        ledger.close_batch(f"none-{i}")
        token = uuid.uuid4().hex
        ledger.take_lock("bench", token, 10_000)
        ledger.release_lock("bench", token)
        ledger.release_lock("bench", token)
    holds.collect()


def forwards(client: redis.Redis, settings: Settings, count: int, holds: Holds) -> None:
    """Forward intents claimed, rescheduled, given up and retried, as the forwarder and the CLI do."""
    fw = Forwards(client, settings)
    for i in range(count):
        fw.add(f"job-{i}", "http://127.0.0.1:9/hook", {"job_id": f"job-{i}", "state": "delivered"})
    claimed = []
    while batch := fw.claim(MAX_STEP):
        claimed += batch
        holds.collect()
    for i, forward in enumerate(claimed):
        if i % 2:
            fw.reschedule(forward.fwd_id, 3600, error="timeout")
        else:
            fw.give_up(forward.fwd_id, "destination_refused")
    holds.collect()
    fw.retry([f.fwd_id for f in claimed[::2]])
    holds.collect()


def events(client: redis.Redis, settings: Settings, count: int, holds: Holds) -> None:
    """A consumer group made and read from the first event kept, acknowledged; skip_missed after."""
    reader = EventReader("bench", "bench-1", settings, client=client, start="0")
    for _ in range(count // 100):
        got = reader.read(100)
        if not got:
            break
        reader.ack(got)
    for _ in range(20):
        reader.ensure_group()
        reader.skip_missed()
    holds.collect()


def search(client: redis.Redis, settings: Settings, batches: list[str], count: int, holds: Holds) -> None:
    """The console's filter over a page of SCAN_LIMIT records, as its searches call it."""
    call = ScriptCalls(client, settings)
    filters = [
        {"state": "queued"},
        {"state": "dead", "reason": "failed"},
        {"number": NUMBER},
        {"batch": batches[0]},
        {"scheduled": "1"},
        {"since": "0", "until_ts": repr(time.time())},
    ]
    for i in range(count):
        batch = batches[i % len(batches)]
        ids = [batch_job_id(batch, (i * 1000 + k) % BULK_CALL) for k in range(1000)]
        args = {"state": "", "reason": "", "number": "", "batch": "", "since": "", "until_ts": "", "scheduled": ""}
        args.update(filters[i % len(filters)])
        call("search_filter", row_args("search_filter", "jobs", ({"job": j} for j in ids)), jobs=len(ids), **args)
        if i % 20 == 0:
            holds.collect()
    holds.collect()


def other_routes(ledger: Ledger, count: int, holds: Holds) -> None:
    """The budget day's script and the SMPP route's: bind slots, receipts by message_id, inbound messages."""
    for i in range(count):
        ledger.budget_announcements()
        ledger.resume_budget("bench")
        slot = ledger.bind_slot("acquire", f"h{i}", lease_s=30)
        ledger.bind_slot("count", "h")
        ledger.bind_slot("release", f"h{i}", slot=slot)
        ledger.match_smpp_receipt(f"smsc-{i}", "DELIVRD", "2612080000")
        ledger.due_smpp_receipts()
        ledger.record_inbound(NUMBER, "033300000000001", f"reply {i}", "opt_out" if i % 10 == 0 else "")
        if i % 100 == 0:
            holds.collect()
    holds.collect()


def run(records: int, sample: int, work_dir: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    service, url = start_redis(work_dir)
    try:
        client = redis.Redis.from_url(url, decode_responses=True)
        settings = settings_for(url)
        producer = SmsProducer(settings)
        ledger = producer.ledger
        ledger.claim_archive("bench")  # finished records wait for the archive, as in production
        holds = Holds(client)
        started = time.monotonic()
        batches = populate(producer, records, holds, progress)
        fill_s = time.monotonic() - started
        job_hashes = records
        first = [batch_job_id(batches[0], i) for i in range(min(records, BULK_CALL))]
        progress("begin / recheck / finish / receipt")
        holds.phase = "calls on the full server"
        delivered = [j for j, _ in lease_and_finish(ledger, first[:sample], holds)]
        progress("operate / redact")
        holds.phase = "calls on the full server"
        operate(ledger, first[sample : 2 * sample], delivered[: sample // 2], holds)
        redact(ledger, delivered[sample // 2 :], holds)
        progress("take")
        take(producer, ledger, sample, holds)
        progress("sweep / claim")
        sweep_and_claim(url, ledger, min(sample, 1000), holds)
        progress("release")
        release(url, producer, sample, holds)
        progress("archived")
        holds.phase = "calls on the full server"
        archived(ledger, holds)
        progress("batch_close / lock_release")
        small_scripts(ledger, batches, min(sample, 1000), holds)
        progress("forward_*")
        forwards(client, settings, sample, holds)
        progress("events_*")
        events(client, settings, sample, holds)
        progress("search_filter")
        search(client, settings, batches, 200, holds)
        progress("budget / bind / smpp_receipt / inbound")
        other_routes(ledger, min(sample, 1000), holds)
        return {
            "records": job_hashes,
            "load_before": load_before,
            "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "sample": sample,
            "fill_s": round(fill_s, 1),
            "populate_slowlog_us": POPULATE_US,
            "redis_used_memory_mb": round(client.info("memory")["used_memory"] / 1e6),
            "goal": {"p99_ms": GOAL_P99_MS, "max_ms": GOAL_MAX_MS},
            "holds": holds.report(),
        }
    finally:
        service.stop()


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['records']:,} records, every call timed by SLOWLOG (idle private Redis); "
        f"load average {result['load_before']} before, {result['load_after']} after",
        "",
        "| script | calls | p50 ms | p99 ms | max ms | goal (p99 <= 10, max <= 20) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, row in result["holds"].items():
        if not name.startswith("EVALSHA "):
            continue
        if not row["count"]:
            lines.append(f"| `{name[8:]}` | 0 | | | | not exercised |")
            continue
        rows = [(f"`{name[8:]}`", row), *((f"  ↳ {phase}", r) for phase, r in row.get("by_phase", {}).items())]
        for label, r in rows:
            verdict = "ok" if r["within_goal"] else "OVER"
            lines.append(f"| {label} | {r['count']:,} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="jobs recorded before the scripts are timed")
    parser.add_argument("--sample", type=int, default=5000, help="jobs (or calls) each script is exercised on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-hold-") as tmp:
        result = run(args.records, args.sample, Path(tmp), lambda line: print(line, file=sys.stderr, flush=True))
    print(table(result), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
