"""`cosmos-sms worker`: Celery worker processes per lane, each with a threads pool.

The lanes run in processes of their own: a bulk chunk holds a task thread while it waits for free
send threads, so in a shared process a campaign could hold every thread and a one-time code would
wait for a chunk to finish. A single-lane process never runs a chunk.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import click

from cli.common import one_line_errors, settings_or_exit
from config.keys import LANE_BULK, LANE_SINGLE, Keys
from config.settings import Settings
from config.version import package_version

BULK_PROCESSES_PER_CORE = 2
"""Two bulk processes of 50 send threads beat one of 100 per core (same sends in flight): a thread
waits less for its process's GIL between two socket calls. Measured side by side on 2 cores:
send_bulk 1,059 -> 1,293 msg/s at 100 ms latency, 1,250 -> 1,725 at 0 ms (bench/README.md)."""


def celery_worker_argv(
    hostname: str, concurrency: int, loglevel: str, queue: str | None, *extra: str, quiet: bool = False
) -> list[str]:
    """One Celery worker process of ours: thread pool, no mingle or gossip, on `queue` (None: both lanes)."""
    argv = [sys.executable, "-m", "celery", *(["--quiet"] if quiet else []), "-A", "worker", "worker"]
    argv += ["--pool", "threads"]
    argv += ["--concurrency", str(concurrency), "--hostname", hostname, "--loglevel", loglevel]
    argv += ["--without-mingle", "--without-gossip", *(["--queues", queue] if queue else []), *extra]
    return argv


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help=f"Bulk-lane worker processes (default: {BULK_PROCESSES_PER_CORE} per core).",
)
@click.option(
    "--single-processes", type=click.IntRange(min=1), default=1, show_default=True, help="Single-lane worker processes."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per single-lane process (default COSMOS_WORKER_CONCURRENCY).",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@one_line_errors
def worker(processes, single_processes, concurrency, loglevel, celery_args) -> None:
    """Run delivery workers: `celery -A worker worker` per lane and core, threads pool.

    Single-lane processes take one-time codes; bulk-lane processes (two per core) send campaign
    chunks through COSMOS_BATCH_THREADS send threads each. Extra arguments are passed to each
    `celery worker`. A process that exits on its own is restarted (after 1 s, up to 30 s while it
    keeps dying). SIGTERM or Ctrl-C stops them gracefully: in-flight jobs finish or go back to the
    queue.
    """
    settings = settings_or_exit()
    settings.require_credentials()
    keys = Keys(settings.redis_prefix)
    processes = processes or default_bulk_processes()
    # Enough chunk tasks to fill the send threads, plus one waiting: more would only hold messages.
    bulk_concurrency = math.ceil(settings.batch_threads / settings.bulk_chunk_size) + 1
    plan = [(LANE_SINGLE, i, concurrency or settings.worker_concurrency) for i in range(single_processes)]
    plan += [(LANE_BULK, i, bulk_concurrency) for i in range(processes)]
    host = socket.gethostname()

    def start(lane: str, i: int, threads: int) -> subprocess.Popen:
        hostname = f"cosmos-{lane}{i}-{os.getpid()}@{host}"
        # --quiet: one banner for the whole command, below, instead of one per process.
        argv = celery_worker_argv(hostname, threads, loglevel, keys.queue(lane), *celery_args, quiet=True)
        return subprocess.Popen(argv)

    click.echo(banner(settings, plan, host))
    children = [start(*entry) for entry in plan]
    stopping: list[int] = []

    def forward(signum, _frame):
        stopping.append(signum)
        forward_all(children, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    sys.exit(_supervise(children, plan, start, stopping))


def banner(settings: Settings, plan: list[tuple[str, int, int]], host: str) -> str:
    """What this command runs, in one line: COSMOS's host and the route, Redis, the processes per lane."""
    api = urlsplit(settings.api_url)
    redis_at = urlsplit(settings.redis_url)
    redis_where = f"{redis_at.hostname}:{redis_at.port or 6379}" if redis_at.scheme.startswith("redis") else "sentinels"
    lanes = ", ".join(
        f"{lane} lane {sum(1 for entry in plan if entry[0] == lane)} process(es) × {threads} task threads"
        for lane, threads in {entry[0]: entry[2] for entry in plan}.items()
    )
    route = getattr(settings, "transport", "http")
    return (
        f"cosmos-sms worker {package_version()} on {host}: COSMOS {api.hostname} (route {route}), "
        f"Redis {redis_where}, {lanes}, {settings.batch_threads} send threads each"
    )


def default_bulk_processes() -> int:
    return BULK_PROCESSES_PER_CORE * (os.cpu_count() or 1)


RESTART_DELAYS_S = (1, 2, 5, 10, 30)
"""Waits before restarting a process that died on its own, growing while it keeps dying within a minute."""


def _supervise(children: list[subprocess.Popen], plan: list, start, stopping: list[int]) -> int:
    """Restart a worker process that exits on its own (kombu can exit one on a lost broker
    connection, celery#7185, celery#6348), except a refused start (exit 2), which stops them all;
    once a signal came, wait for all and return their code.

    The jobs of a process that died are safe meanwhile: their leases expire and the reconciler in
    the other processes republishes them.
    """
    restarts = [0] * len(children)
    started = [time.monotonic()] * len(children)
    while True:
        if stopping:
            return _wait_all(children)
        for n, child in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            if code == 2:  # a refused start (settings, Redis safety): it would only be refused again
                forward_all(children, signal.SIGTERM)
                _wait_all(children)
                return 2
            restarts[n] = restarts[n] + 1 if time.monotonic() - started[n] < 60 else 1
            delay = RESTART_DELAYS_S[min(restarts[n], len(RESTART_DELAYS_S)) - 1]
            print(
                f"cosmos-sms worker: {plan[n][0]} process {plan[n][1]} exited with {code}; restarting in {delay} s",
                file=sys.stderr,
                flush=True,
            )
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not stopping:
                time.sleep(0.1)  # a supervisor's wait, interrupted by a signal
            if stopping:
                return _wait_all(children)
            children[n] = start(*plan[n])
            started[n] = time.monotonic()
            if stopping:  # the signal came while it started: it has not had it
                children[n].send_signal(stopping[-1])
        time.sleep(0.2)  # polling the children: a supervisor's loop


def forward_all(children: list[subprocess.Popen], signum: int) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signum)


def _wait_all(children: list[subprocess.Popen]) -> int:
    codes = [child.wait() for child in children]
    return max(codes, key=abs) if any(codes) else 0
