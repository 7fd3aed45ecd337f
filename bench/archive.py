"""The archive's figures: records/s written into PostgreSQL by the archiver's own write path, and the
Redis memory a record costs while it waits for the archive.

    python -m bench.archive                       # 100,000 rows into PostgreSQL (fsync on), 20,000 records in Redis
    python -m bench.archive --rows 20000 --records 5000

PostgreSQL is a private cluster of Debian's server binaries (tests/support/postgres.py), fsync on, on
this machine; rows are written in steps of ARCHIVE_STEP, each one transaction with its daily-fact
deltas, as the archiver writes them. Memory is Redis's `used_memory` before and after: final records
that wait for the archive (record, indexes, to-archive entry), and the to-archive entries alone.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-archive-") as work:
        report = {"write": write_throughput(args.rows), "memory": waiting_bytes(args.records, Path(work))}
    per_hour = report["memory"]["bytes_per_waiting_record"] * 1000 * 3600
    report["memory"]["outage_hour_at_1000_msg_s_gb"] = round(per_hour / 1e9, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
