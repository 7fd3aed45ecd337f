"""Console speed: p50/p95 of every GET page with N records in Redis (default 1,000,000).

Fills a private redis-server quickly with HSET/ZADD in the ledger's shapes (job hashes,
`idx:created`, `idx:to:<number>`, dead and held sets, message ids, idempotency keys, batches, counters,
an hour of events; packed by hiredis, streamed by `redis-cli --pipe`), starts a real `cosmos-sms console`
process, logs in once (the login's argon2 cost is not measured) and times sequential GETs of each page
over HTTP.

    .venv/bin/python -m bench.console_speed [--records N] [--requests 40] [--out results.json]
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
from console.users import encode_hash
from ledger.schema import batch_job_id

PREFIX = "bench"
PASSWORD = "bench password"
FILL_STEP = 5000
REASONS = ("retries_exhausted", "invalid_to", "suppressed")
HOT_NUMBER = "033300000000000"


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
    span = 7 * 86400
    counters: dict[str, int] = {}
    sample = {"job": "", "message_id": "", "idem": ""}
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
        ]
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
            ]
            emit("SET", f"{PREFIX}:msgid:m{i:09d}", job)
            if not sample["message_id"] and i > records // 3:
                sample["message_id"] = f"m{i:09d}"
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


def pages(sample: dict) -> dict[str, str | None]:
    return {
        "overview": "/",
        "overview tiles": "/overview/tiles",
        "messages (newest)": "/messages",
        "messages page 2": None,  # filled from page 1's cursor
        "search job id": f"/messages?job_id={sample['job']}",
        "search message_id": f"/messages?message_id={sample['message_id']}",
        "search idempotency key": f"/messages?idem={sample['idem']}",
        "search number (hot, 50k)": f"/messages?number={HOT_NUMBER}",
        "search number": f"/messages?number={sample['number']}",
        "search batch": "/messages?batch=bench-batch",
        "search state=queued (scan)": "/messages?state=queued",
        "search dead + reason": "/messages?state=dead&reason=invalid_to",
        "search time range": "/messages?since=2000-01-01T00:00&until=2100-01-01T00:00",
        "message page": f"/messages/{sample['job']}",
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
        if response.status_code != 200:
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
        memory_mb = client.info("memory")["used_memory"] / 1e6
        index_bytes = {
            "idx:created per entry": round(_memory(client, f"{PREFIX}:idx:created") / args.records, 1),
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
            "fill_s": round(fill_s, 1),
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
