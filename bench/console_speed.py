"""Console speed: p50/p95 of every GET page with N full records in Redis (default 1,000,000) and
M entries (default 10,000,000) in each index a page walks.

Fills a private redis-server quickly with HSET/ZADD in the ledger's shapes (job hashes with their
timeline, `idx:created`, `idx:to:<number>`, dead and held sets, message ids, idempotency keys, batches,
counters, scheduled jobs, worker heartbeats, an hour of events; packed by hiredis, streamed by
`redis-cli --pipe`), then pads `idx:created`, the busiest number's `idx:to`, `dead` and `held` to M entries
each with entries older than every record (their records are gone, as after the retention sweep), starts
a real `cosmos-sms console` process (no archive: `/reports` says so, `/history` reads Redis), logs in once
(the login's argon2 cost is not measured) and times sequential GETs of each page over HTTP.

    .venv/bin/python -m bench.console_speed [--records N] [--index-entries M] [--requests 40] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import cast

import hiredis
import httpx
import redis

from bench.processes import cosmos_cmd, free_port, spawn, start_redis, wait_for
from config.keys import Keys
from console.users import encode_hash
from ledger.processes import Heartbeats
from ledger.schema import batch_job_id

PREFIX = "bench"
PASSWORD = "bench password"
FILL_STEP = 5000
REASONS = ("retries_exhausted", "invalid_to", "suppressed")
HOT_NUMBER = "033300000000000"
PADDED = ("idx:created", f"idx:to:{HOT_NUMBER}", "dead", "held")
"""The indexes a page walks, padded to --index-entries."""
PAD_STEP = 1000
SPAN_S = 7 * 86400


def _state(i: int) -> str:
    roll = i % 100
    return "dead" if roll < 5 else "held" if roll < 7 else "queued" if roll < 10 else "delivered"


class Filler:
    """Writes commands at full speed: hiredis packs them, `redis-cli --pipe` streams them and drains replies."""

    def __init__(self, url: str):
        port = str(redis.connection.parse_url(url).get("port", 6379))
        self.proc = subprocess.Popen(
            [shutil.which("redis-cli") or "redis-cli", "-p", port, "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.buffer: list[bytes] = []

    def __call__(self, *command: object) -> None:
        # hiredis's stub types `cmd` as a one-element tuple; it takes a command of any length.
        self.buffer.append(hiredis.pack_command(tuple(str(c) for c in command)))  # type: ignore[arg-type]
        if len(self.buffer) >= 20_000:
            self.flush()

    def flush(self) -> None:
        assert self.proc.stdin is not None  # opened with stdin=PIPE
        self.proc.stdin.write(b"".join(self.buffer))
        self.buffer.clear()

    def close(self) -> str:
        self.flush()
        out, _ = self.proc.communicate()
        if self.proc.returncode != 0 or b"errors: 0" not in out:
            raise RuntimeError(f"redis-cli --pipe: {out.decode(errors='replace')[-500:]}")
        return out.decode().strip().splitlines()[-1]


def fill(url: str, records: int) -> dict:
    """N records over the last 7 days, in the ledger's key shapes; returns ids worth asking for."""
    emit = Filler(url)
    now = time.time()
    span = SPAN_S
    counters: dict[str, int] = {}
    sample = {"job": "", "message_id": "", "idem": "", "delivered": ""}
    batch_total = min(10_000, records)
    for i in range(records):
        in_batch = i < batch_total
        job = batch_job_id("bench-batch", i) if in_batch else f"j{i:09d}"
        created = now - span + span * i / records
        to = HOT_NUMBER if i % 20 == 0 else f"0333{i % 100_000:011d}"
        state = _state(i)
        fields = [
            "job_id",
            job,
            "state",
            state,
            "lane",
            "bulk" if in_batch else "single",
            "to",
            to,
            "from",
            "Bench",
            "text",
            "Your code is 123456",
            "created_ts",
            created,
            "updated_ts",
            created + 2,
            "expires_ts",
            created + 86400,
            "attempts",
            1,
            "history",
            "ok/200/85",
            "timeline_n",
            4 if state == "delivered" else 2,
            "~0",
            "0|queued",
            "~1",
            "50|sending|n=1",
        ]
        if state == "queued" and i % 30 == 9:
            fields += ["send_at", now + 86400, "waiting", "send_at"]
        if in_batch:
            fields += ["batch", "bench-batch"]
        if state == "delivered":
            fields += [
                "message_id",
                f"m{i:09d}",
                "price",
                0.01,
                "sent_ts",
                created + 1,
                "delivered_ts",
                created + 2,
                "delivery_status",
                "delivered",
                "~2",
                "130|sent|n=1|h=200|ms=85|r=http",
                "~3",
                "2000|delivered|st=DELIVRD",
            ]
            emit("SET", f"{PREFIX}:msgid:m{i:09d}", job)
            if not sample["message_id"] and i > records // 3:
                sample["message_id"] = f"m{i:09d}"
                sample["delivered"] = job
        elif state == "dead":
            reason = REASONS[i % len(REASONS)]
            fields += ["dead_reason", reason]
            emit("ZADD", f"{PREFIX}:dead", created + 2, job)
            counters[f"dead:{reason}"] = counters.get(f"dead:{reason}", 0) + 1
        elif state == "held":
            emit("ZADD", f"{PREFIX}:held", created + 2, job)
        if i % 10 == 3:
            fields += ["idem", f"order-{i}"]
            emit("SET", f"{PREFIX}:idem:order-{i}", f"{job}|fp")
            if not sample["idem"] and i > records // 3:
                sample["idem"] = f"order-{i}"
        emit("HSET", f"{PREFIX}:job:{job}", *fields)
        emit("ZADD", f"{PREFIX}:idx:created", created, job)
        emit("ZADD", f"{PREFIX}:idx:to:{to}", created, job)
        counters[f"state:{state}"] = counters.get(f"state:{state}", 0) + 1
        if i == records // 2 + 1:
            sample.update(job=job, number=to)
            # The same record with a full timeline: 10 first entries, 40 last ones, 40 omitted between.
            slots = [(f"~{k}", f"{k * 1000}|retrying|n={k}|h=503|ms=120|r=http") for k in range(50)]
            emit("HSET", f"{PREFIX}:job:{job}", "timeline_n", 90, *[x for kv in slots for x in kv])
    batch: dict[str, object] = {"total": batch_total, "created_ts": now - span, "fingerprint": "bfp"}
    batch_states: dict[str, int] = {}
    for i in range(batch_total):
        batch_states[f"state:{_state(i)}"] = batch_states.get(f"state:{_state(i)}", 0) + 1
    batch.update(batch_states)
    emit("HSET", f"{PREFIX}:batch:bench-batch", *[x for kv in batch.items() for x in kv])
    emit("HSET", f"{PREFIX}:counters", *[x for kv in counters.items() for x in kv], "total_price", records * 0.009)
    for start in range(0, 10_000, 1000):
        emit("SADD", f"{PREFIX}:suppressed", *[f"0444{i:011d}" for i in range(start, start + 1000)])
    for i in range(20_000):  # an hour of state changes for the chart
        ts = now - 3600 + 3600 * i / 20_000
        emit(
            "XADD",
            f"{PREFIX}:events",
            f"{int(ts * 1000)}-{i}",
            "job",
            f"j{i:09d}",
            "state",
            ("sent", "delivered", "dead")[i % 3],
            "prev",
            "queued",
            "ts",
            ts,
        )
    for i in range(2000):
        emit(
            "XADD",
            f"{PREFIX}:audit",
            "*",
            "ts",
            now,
            "user",
            "alice",
            "action",
            "requeue",
            "target",
            f"j{i}",
            "count",
            1,
            "detail",
            "",
        )
    sample["pipe"] = emit.close()
    return sample


def pad(url: str, entries: int) -> dict[str, int]:
    """Each of PADDED grown to `entries` entries, older than every record; returns entries added per index."""
    client = redis.Redis.from_url(url)
    emit = Filler(url)
    oldest = time.time() - SPAN_S - 1
    added = {}
    for name in PADDED:
        missing = max(0, entries - int(client.zcard(f"{PREFIX}:{name}")))
        for start in range(0, missing, PAD_STEP):
            pairs: list[object] = []
            for i in range(start, min(missing, start + PAD_STEP)):
                pairs += (oldest - i, f"g{i:09d}")
            emit("ZADD", f"{PREFIX}:{name}", *pairs)
        added[name] = missing
    emit.close()
    return added


def pages(sample: dict) -> dict[str, str | None]:
    deep = repr(time.time() - SPAN_S - 1 - 5_000_000)
    spaced = f"+{HOT_NUMBER[:4]} {HOT_NUMBER[4:8]} {HOT_NUMBER[8:]}"
    return {
        "overview": "/",
        "overview tiles": "/overview/tiles",
        "messages (newest)": "/messages",
        "messages page 2": None,  # filled from page 1's cursor
        "search job id": f"/messages?job_id={sample['job']}",
        "search message_id": f"/messages?message_id={sample['message_id']}",
        "search idempotency key": f"/messages?idem={sample['idem']}",
        "search number (busiest)": f"/messages?number={HOT_NUMBER}",
        "search number": f"/messages?number={sample['number']}",
        "search batch": "/messages?batch=bench-batch",
        "search state=queued (scan)": "/messages?state=queued",
        "search dead + reason": "/messages?state=dead&reason=invalid_to",
        "search time range": "/messages?since=2000-01-01T00:00&until=2100-01-01T00:00",
        "messages, deep cursor (5M entries in)": f"/messages?cursor={deep}:g005000000",
        "search number with spaces and +": f"/messages?number={spaced}",
        "search scheduled": "/messages?scheduled=1",
        "message page (timeline of 90, 50 kept)": f"/messages/{sample['job']}",
        "message page (delivered)": f"/messages/{sample['delivered']}",
        "processes": "/processes",
        "history": "/history",
        "history by number": f"/history?to={HOT_NUMBER}",
        "history state=delivered": "/history?state=delivered",
        "reports (no archive)": "/reports",
        "dead letters": "/dead",
        "dead by reason": "/dead?reason=suppressed",
        "held": "/held",
        "suppression": "/suppression",
        "batches (scan)": "/batches",
        "batch": "/batches?batch=bench-batch",
        "controls": "/controls",
        "audit": "/audit",
    }


def _memory(client: redis.Redis, key: str) -> int:
    """MEMORY USAGE of a key the fill wrote (None would mean it is missing)."""
    used = client.memory_usage(key)
    if used is None:
        raise RuntimeError(f"{key}: missing after the fill")
    return used


def login(http: httpx.Client) -> None:
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text)
    if found is None:
        raise RuntimeError("the login page has no csrf_token field")
    token = found.group(1)
    response = http.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token, "next": "/"})
    if response.status_code != 303:
        raise RuntimeError(f"login failed: {response.status_code}")


def measure(http: httpx.Client, path: str, requests: int) -> dict:
    for _ in range(3):
        http.get(path)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code not in (200, 303):  # 303: one exact hit opens the message
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "max_ms": round(times[-1], 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--index-entries", type=int, default=10_000_000, help="entries in each index a page walks")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="console-speed-"))
    redis_service, url = start_redis(work)
    console = None
    try:
        client = redis.Redis.from_url(url, decode_responses=True)
        started = time.monotonic()
        sample = fill(url, args.records)
        fill_s = time.monotonic() - started
        started = time.monotonic()
        padded = pad(url, args.index_entries)
        pad_s = time.monotonic() - started
        beats = Heartbeats(client, Keys(PREFIX))
        for n in range(20):
            beats.beat(f"host-{n}:{1000 + n}", {"host": f"host-{n}", "pid": 1000 + n, "lanes": ["bulk"]}, 5)
        memory_mb = client.info("memory")["used_memory"] / 1e6
        index_bytes = {
            "idx:created per entry": round(
                _memory(client, f"{PREFIX}:idx:created") / client.zcard(f"{PREFIX}:idx:created"), 1
            ),
            "idx:to (hot number) per entry": round(
                _memory(client, f"{PREFIX}:idx:to:{HOT_NUMBER}") / client.zcard(f"{PREFIX}:idx:to:{HOT_NUMBER}"), 1
            ),
            "job hash (one record)": _memory(client, f"{PREFIX}:job:{sample['job']}"),
        }
        port = free_port()
        env = {
            "REDIS_URL": url,
            "COSMOS_REDIS_PREFIX": PREFIX,
            "PATH": "/usr/bin:/bin",
            "COSMOS_CONSOLE_USERS": f"bench:operator:{encode_hash(PASSWORD)}",
            "COSMOS_LOG_FORMAT": "json",
        }
        console = spawn("console", cosmos_cmd("console", "--port", str(port)), env, work)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            console.check_alive()
            try:
                return httpx.get(f"{base}/login", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 60, "the console to answer")
        # A console runs for days: measure after its chart counter has caught up with the events stream.
        # decode_responses: entry ids are str.
        last_event = cast(list[tuple[str, dict[str, str]]], client.xrevrange(f"{PREFIX}:events", count=1))[0][0]
        wait_for(
            lambda: client.get(f"{PREFIX}:console:events_cursor") == last_event,
            300,
            "the console's chart counter to catch up",
        )
        results = {}
        with httpx.Client(base_url=base, timeout=30) as http:
            login(http)
            first = http.get("/messages").text
            cursor = re.search(r'id="next" href="([^"]+)"', first)
            for name, path in pages(sample).items():
                path = path or (cursor.group(1).replace("&amp;", "&") if cursor else "/messages")
                results[name] = measure(http, path, args.requests)
        report = {
            "records": args.records,
            "index_entries": {name: client.zcard(f"{PREFIX}:{name}") for name in PADDED},
            "index_entries_added": padded,
            "fill_s": round(fill_s, 1),
            "pad_s": round(pad_s, 1),
            "redis_used_memory_mb": round(memory_mb),
            "index_memory_bytes": index_bytes,
            "requests_per_page": args.requests,
            "pages": results,
            "worst_p95_ms": max(r["p95_ms"] for r in results.values()),
        }
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    finally:
        if console:
            console.stop()
        redis_service.stop()


if __name__ == "__main__":
    main()
