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

import click

from cli.common import one_line_errors, settings_or_exit
from config.keys import LANE_BULK, LANE_SINGLE, Keys


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--processes", type=click.IntRange(min=1), default=None, help="Bulk-lane worker processes (default: one per core)."
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

    Single-lane processes take one-time codes; bulk-lane processes (one per core) send campaign
    chunks through COSMOS_BATCH_THREADS send threads each. Extra arguments are passed to each
    `celery worker`. SIGTERM or Ctrl-C stops them gracefully: in-flight jobs finish or go back
    to the queue.
    """
    settings = settings_or_exit()
    settings.require_credentials()
    keys = Keys(settings.redis_prefix)
    processes = processes or os.cpu_count() or 1
    # Enough chunk tasks to fill the send threads, plus one waiting: more would only hold messages.
    bulk_concurrency = math.ceil(settings.batch_threads / settings.bulk_chunk_size) + 1
    plan = [(LANE_SINGLE, i, concurrency or settings.worker_concurrency) for i in range(single_processes)]
    plan += [(LANE_BULK, i, bulk_concurrency) for i in range(processes)]
    host = socket.gethostname()
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "--pool",
                "threads",
                "--queues",
                keys.queue(lane),
                "--concurrency",
                str(threads),
                "--hostname",
                f"cosmos-{lane}{i}-{os.getpid()}@{host}",
                "--loglevel",
                loglevel,
                "--without-mingle",
                "--without-gossip",
                *celery_args,
            ]
        )
        for lane, i, threads in plan
    ]

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    sys.exit(max(codes, key=abs) if any(codes) else 0)
