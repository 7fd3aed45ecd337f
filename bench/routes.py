"""Both routes side by side: send_bulk of N to the sandbox over HTTP, then over SMPP; msg/s to all `sent`.

    .venv/bin/python -m bench.routes --messages 5000 --latency-ms 0 --binds 2 --window 100

A rough figure, not bench.run's full one: one private Redis (no persistence), `cosmos-sms worker`
as a user runs it, the sandbox (and its SMSC) with receipts held back, the clock from the enqueue.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from config.celery import make_celery
from config.settings import Settings
from demo.processes import free_port
from producers.producer import SmsProducer

START_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cosmos-routes-"))
    children: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmd: list[str], env: dict[str, str]) -> None:
        with (work / f"{name}.log").open("wb") as log:
            children.append(
                subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
            )

    redis_port = free_port()
    start("redis", ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], dict(os.environ))
    try:
        for route in ("http", "smpp"):
            rate = run_route(route, args, redis_port, start)
            print(f"{route}: {args.messages} messages at {args.latency_ms:g} ms latency: {rate:.0f} msg/s", flush=True)
            for child in children[1:]:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(30)
            del children[1:]
    finally:
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_route(route: str, args: argparse.Namespace, redis_port: int, start) -> float:  # type: ignore[no-untyped-def]
    sandbox_port, smsc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        COSMOS_REDIS_PREFIX=f"routes{uuid.uuid4().hex[:6]}",
        COSMOS_API_KEY="bench-key",
        COSMOS_API_SECRET="bench-secret",
        COSMOS_API_URL=f"http://127.0.0.1:{sandbox_port}/v1.0",
        COSMOS_LOG_LEVEL="WARNING",
        COSMOS_TRANSPORT=route,
        COSMOS_SMPP_URL=f"smpp://127.0.0.1:{smsc_port}",
        COSMOS_SMPP_SYSTEM_ID="bench-key",
        COSMOS_SMPP_PASSWORD="bench-secret",
        COSMOS_SMPP_MAX_BINDS=str(args.binds),
        COSMOS_SMPP_WINDOW=str(args.window),
    )
    cosmos = [sys.executable, "-m", "cli.main"]
    start(
        f"sandbox-{route}",
        [*cosmos, "sandbox", "--port", str(sandbox_port), "--smpp-port", str(smsc_port)]
        + ["--latency-ms", str(args.latency_ms), "--receipt-delay-s", "3600"],
        env,
    )
    start(f"worker-{route}", [*cosmos, "worker"], env)
    settings = Settings(_env_file=None, **{k: v for k, v in env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"})
    celery = make_celery(settings)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not celery.control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise SystemExit(f"{route}: the worker did not answer within {START_TIMEOUT_S:g} s")
    celery.close()
    producer = SmsProducer(settings)
    messages = [{"to": f"0447700{i:08d}", "sender": "Bench", "text": f"bench {i}"} for i in range(args.messages)]
    started = time.monotonic()
    ids = producer.send_bulk(messages)
    while sum(1 for s in producer.ledger.states(ids) if s in ("sent", "dead")) < len(ids):
        if time.monotonic() - started > RUN_TIMEOUT_S:
            raise SystemExit(f"{route}: not every message sent within {RUN_TIMEOUT_S:g} s")
        time.sleep(0.2)  # polling interval
    return len(ids) / (time.monotonic() - started)


if __name__ == "__main__":
    main()
