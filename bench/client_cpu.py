"""Micro benchmark: the COSMOS client's own CPU per request, per transport, against a local sandbox.

    .venv/bin/python -m bench.client_cpu [--requests 2000] [--threads 1,32]

CPU is this process's user+system time (every thread) divided by the requests sent; the
sandbox runs in its own process, so its work is not counted. Wall rates are shown too, but on a
shared machine they say more about the neighbours than about the client.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.processes import cosmos_cmd, free_port, spawn, wait_for
from cosmos_api.client import PoolTransport, RequestsTransport
from cosmos_api.rules import encode_body

API_KEY, API_SECRET = "bench-key", "bench-secret"
TRANSPORTS = {"requests": RequestsTransport, "urllib3": PoolTransport}


def measure(transport, requests_n: int, threads: int) -> dict:
    body = encode_body(
        {
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "to": "033334445566770",
            "from": "Company Name 123",
            "text": "Hello world!",
        }
    )
    per_thread = max(1, requests_n // threads)

    def loop(_index: int) -> int:
        accepted = 0
        for _ in range(per_thread):
            accepted += transport.post(body).kind == "accepted"
        return accepted

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))  # warm: connections opened, code paths hot
        cpu, wall = time.process_time(), time.perf_counter()
        accepted = sum(pool.map(loop, range(threads)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = per_thread * threads
    return {
        "threads": threads,
        "requests": sent,
        "accepted": accepted,
        "cpu_us_per_request": cpu / sent * 1e6,
        "wall_requests_per_s": sent / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per transport and thread count")
    parser.add_argument("--threads", default="1,32", help="thread counts, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="cosmos-client-cpu-"))
    port = free_port()
    sandbox = spawn(
        "sandbox",
        cosmos_cmd(
            "sandbox",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--api-secret",
            API_SECRET,
            "--receipt-delay-s",
            "3600",
        ),
        {**__import__("os").environ, "PYTHONUNBUFFERED": "1"},
        work_dir,
    )
    endpoint = f"http://127.0.0.1:{port}/v1.0/sms/"
    results = []
    try:
        probe = PoolTransport(endpoint, connect_timeout_s=1, read_timeout_s=5)
        wait_for(lambda: sandbox.check_alive() and probe.post(b"{}").http, 30, "the sandbox to answer")
        for threads in (int(x) for x in args.threads.split(",")):
            for name, cls in TRANSPORTS.items():
                transport = cls(endpoint, connect_timeout_s=3.05, read_timeout_s=10)
                row = {"transport": name, **measure(transport, args.requests, threads)}
                results.append(row)
                print(
                    f"{name:9} threads={threads:3} cpu={row['cpu_us_per_request']:7.0f} µs/request "
                    f"wall={row['wall_requests_per_s']:6.0f}/s accepted={row['accepted']}/{row['requests']}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        sandbox.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
