"""Measure the ledger's capacity per Redis core: the real enqueue, begin and finish scripts, per message.

`python -m tests.multihost.capacity [--messages N] [--clients C] [--appendfsync always|everysec|no]`
starts a private redis-server, runs N messages through enqueue → begin → finish(accepted) from C
client threads, and divides N by the CPU seconds Redis itself spent (INFO cpu): messages per second
that one fully busy Redis core sustains, whatever the clients' own speed. Also prints wall-clock
throughput, which on a shared machine is bounded by the clients, not by Redis.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from config.keys import LANE_SINGLE, Keys
from config.settings import Settings
from ledger.outbox import single_message
from ledger.store import Ledger, NewJob
from tests.support.redis_server import start_private_redis


def redis_cpu_s(client) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def one_message(ledger: Ledger, keys: Keys, index: int) -> None:
    job_id = uuid.uuid4().hex
    job = NewJob(job_id, LANE_SINGLE, "033334445566770", "Shop", f"message {index}", None, False, None, "fp", 3600)
    queue_key, message = single_message(keys, LANE_SINGLE, job_id)
    ledger.enqueue([job], [(1, 1, queue_key, message)])
    owner = f"capacity:{index}"
    ledger.begin(job_id, owner, count_delivery=True)
    ledger.finish(job_id, owner, "accepted", status="accepted", http=201, latency_ms=5, message_id=f"m{index}")


def measure(messages: int, clients: int, appendfsync: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_private_redis(Path(tmp), "--appendonly", "yes", "--appendfsync", appendfsync)
        try:
            client = server.client()
            settings = Settings(_env_file=None, REDIS_URL=server.url, COSMOS_REDIS_PREFIX="capacity")
            ledger, keys = Ledger(client, settings), Keys(settings.redis_prefix)
            one_message(ledger, keys, -1)  # scripts loaded before the clock starts
            cpu0, wall0 = redis_cpu_s(client), time.monotonic()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda i: one_message(ledger, keys, i), range(messages)))
            cpu, wall = redis_cpu_s(client) - cpu0, time.monotonic() - wall0
            return {
                "messages": messages,
                "redis_cpu_s": round(cpu, 3),
                "wall_s": round(wall, 3),
                "per_redis_core_per_s": round(messages / cpu) if cpu else 0.0,
                "wall_per_s": round(messages / wall),
            }
        finally:
            server.stop(graceful=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--appendfsync", default="everysec", choices=["always", "everysec", "no"])
    args = parser.parse_args()
    print({"appendfsync": args.appendfsync, **measure(args.messages, args.clients, args.appendfsync)})


if __name__ == "__main__":
    main()
