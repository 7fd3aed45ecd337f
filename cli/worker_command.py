"""`cosmos-sms worker`: one Celery worker process per core, each with a threads pool."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import click

from cli.common import one_line_errors, settings_or_exit


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: one per core).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Threads per process for Celery tasks (default COSMOS_WORKER_CONCURRENCY).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@one_line_errors
def worker(processes, concurrency, loglevel, celery_args) -> None:
    """Run delivery workers: `celery -A worker worker` per core, threads pool, both lanes.

    Extra arguments are passed to each `celery worker`. SIGTERM or Ctrl-C stops them
    gracefully: in-flight jobs finish or go back to the queue.
    """
    settings = settings_or_exit()
    settings.require_credentials()
    processes = processes or os.cpu_count() or 1
    concurrency = concurrency or settings.worker_concurrency
    host = socket.gethostname()
    children = [
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", "threads",
                          "--concurrency", str(concurrency), "--hostname", f"cosmos{i}-{os.getpid()}@{host}",
                          "--loglevel", loglevel, "--without-mingle", "--without-gossip", *celery_args])
        for i in range(processes)
    ]

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    sys.exit(max(codes, key=abs) if any(codes) else 0)
