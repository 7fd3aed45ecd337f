"""The archive's figures: records/s written into PostgreSQL by the archiver's own write path, and the
Redis memory a record costs while it waits for the archive.

    python -m bench.archive                       # 100,000 rows into PostgreSQL (fsync on), 20,000 records in Redis
    python -m bench.archive --rows 20000 --records 5000
    python -m bench.archive --scale 1000000       # then `history --to` and `export` over an archive of 1M rows

PostgreSQL is a private cluster of Debian's server binaries (tests/support/postgres.py), fsync on, on
this machine; rows are written in steps of ARCHIVE_STEP, each one transaction with its daily-fact
deltas, as the archiver writes them. Memory is Redis's `used_memory` before and after: final records
that wait for the archive (record, indexes, to-archive entry), and the to-archive entries alone.
With --scale N, an archive of N rows (filled with fsync off) is asked by the real commands:
`history --to` (the query as the command times it, and the whole command) and `export` of 10 % and
of all rows (seconds, and the command's peak RSS).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import redis

from archive.engine import create_archive_engine
from archive.rows import row_from_hash
from archive.schema import ensure_schema
from archive.store import Archive
from bench.processes import start_redis
from config.settings import load_settings
from ledger.schema import ARCHIVE_STEP, STEP
from producers.producer import SmsProducer
from tests.support.postgres import start_private_postgres


def write_throughput(rows: int, step_size: int = ARCHIVE_STEP) -> dict[str, float]:
    server = start_private_postgres(fsync=True)
    if server is None:
        raise SystemExit("no PostgreSQL server binaries")
    try:
        engine = create_archive_engine(server.create_database("bench"))
        ensure_schema(engine, "bench")
        archive = Archive(engine, "bench")
        now = time.time()
        raw = {
            "state": "delivered",
            "lane": "bulk",
            "from": "Shop",
            "text": "Your weekly offer: 20% off everything, today only.",
            "message_id": "",
            "price": "0.0125",
            "attempts": "1",
            "history": "ok/200/35",
        }
        started = time.perf_counter()
        for start in range(0, rows, step_size):
            step = [
                row_from_hash(
                    "bench",
                    f"b{i:012d}",
                    {**raw, "to": f"0{i % 10**14:014d}", "batch": f"camp-{i // 10_000}", "created_ts": str(now + i)},
                    now,
                )
                for i in range(start, min(rows, start + step_size))
            ]
            archive.write(step)
        elapsed = time.perf_counter() - started
        return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed)}
    finally:
        server.stop("fast")
        server.remove()


def waiting_bytes(records: int, work: Path) -> dict[str, float]:
    service, url = start_redis(work)
    try:
        settings = load_settings(REDIS_URL=url, COSMOS_REDIS_PREFIX="bench", COSMOS_ARCHIVE_URL="none")
        producer = SmsProducer(settings)
        client: redis.Redis = producer.ledger.redis
        producer.ledger.claim_archive("bench-archive sqlite:///bench")
        before = int(client.info("memory")["used_memory"])
        text = "Your weekly offer: 20% off everything."
        ids = producer.send_bulk([{"to": f"0{i:014d}", "sender": "Shop", "text": text} for i in range(records)])
        for start in range(0, len(ids), STEP):
            producer.ledger.operate_many("cancel", ids[start : start + STEP])
        final = int(client.info("memory")["used_memory"])
        client.delete(producer.keys.archive_pending)
        without_entries = int(client.info("memory")["used_memory"])
        return {
            "records": records,
            "bytes_per_waiting_record": round((final - before) / records),
            "bytes_per_to_archive_entry": round((final - without_entries) / records),
        }
    finally:
        service.stop()


def _fill(archive: Archive, rows: int, numbers: int) -> None:
    now = time.time() - rows
    raw = {"state": "delivered", "lane": "bulk", "from": "Shop", "text": "Your weekly offer: 20% off.", "price": "0.01"}
    for start in range(0, rows, 5000):
        archive.write(
            [
                row_from_hash(
                    "bench",
                    f"s{i:010d}",
                    {**raw, "to": f"03{i % numbers:013d}", "batch": f"camp-{i // 100_000}", "created_ts": str(now + i)},
                    now,
                )
                for i in range(start, min(rows, start + 5000))
            ]
        )


def _command(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stderr) of one `cosmos-sms` command."""
    import subprocess
    import sys

    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)  # sampling interval of the RSS watch
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, err
    return time.perf_counter() - started, peak / 1e6, err


def at_scale(rows: int, work: Path) -> dict[str, object]:
    import os
    import re

    server = start_private_postgres(fsync=False)
    if server is None:
        raise SystemExit("no PostgreSQL server binaries")
    service, redis_url = start_redis(work)
    try:
        url = server.create_database("scale")
        engine = create_archive_engine(url)
        ensure_schema(engine, "bench")
        filled = time.perf_counter()
        _fill(Archive(engine, "bench"), rows, numbers=max(1, rows // 20))
        fill_s = time.perf_counter() - filled
        env = {**os.environ, "REDIS_URL": redis_url, "COSMOS_REDIS_PREFIX": "bench", "COSMOS_ARCHIVE_URL": url}
        whole, _, err = _command(env, "history", "--to", f"03{rows // 40:013d}", "--limit", "50")
        query_ms = float(re.search(r"in ([0-9.]+) ms", err).group(1))  # type: ignore[union-attr]
        start = "2000-01-01T00:00:00Z"
        tenth = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - rows + rows // 10))
        part_s, part_mb, _ = _command(env, "export", "--since", start, "--until", tenth)
        all_s, all_mb, _ = _command(env, "export", "--since", start, "--until", "2100-01-01T00:00:00Z")
        return {
            "rows": rows,
            "fill_s": round(fill_s, 1),
            "history_to_query_ms": query_ms,
            "history_to_command_s": round(whole, 2),
            "export_tenth_s": round(part_s, 1),
            "export_tenth_peak_rss_mb": round(part_mb),
            "export_all_s": round(all_s, 1),
            "export_all_peak_rss_mb": round(all_mb),
        }
    finally:
        service.stop()
        server.stop("immediate")
        server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--scale", type=int, default=0, help="rows of an archive to ask `history` and `export`")
    args = parser.parse_args()
    if args.scale:
        with tempfile.TemporaryDirectory(prefix="cosmos-bench-archive-") as work:
            print(json.dumps(at_scale(args.scale, Path(work)), indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-archive-") as work:
        report = {"write": write_throughput(args.rows), "memory": waiting_bytes(args.records, Path(work))}
    per_hour = report["memory"]["bytes_per_waiting_record"] * 1000 * 3600
    report["memory"]["outage_hour_at_1000_msg_s_gb"] = round(per_hour / 1e9, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
