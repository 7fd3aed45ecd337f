"""Runs the demo from start to end; whatever happens (error, Ctrl-C, SIGTERM), every child is stopped."""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from demo.pipeline import DEMO_ARCHIVE, ConsoleLogin, start_pipeline
from demo.processes import DemoError, Supervisor
from demo.report import summarize
from demo.scenario import Scenario, plan

DEADLINE_BASE_S = 60.0
DEADLINE_PER_MESSAGE_S = 0.25
"""Deadline for every job to be final, counted from the first enqueue; generous for a busy 2-core machine."""
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_demo(
    configured_redis_url: str | None,
    count: int,
    on_progress: Callable[[int, int], None],
    keep_running: Callable[[dict, ConsoleLogin], None] | None = None,
    transport: str = "http",
) -> tuple[dict, Path | None]:
    """Start the pipeline, send `count` messages, follow them; returns (summary, kept log dir or None).

    SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so the `finally` below always runs.
    With `keep_running`, a console is started too, and `keep_running(summary, login)` is called after
    the summary, with everything still running: it returns (or raises KeyboardInterrupt) to end the demo.
    Logs are kept (and named) only when something went wrong.
    """
    previous = {signal.SIGINT: signal.getsignal(signal.SIGINT)}
    previous.update({signum: signal.signal(signum, _interrupt) for signum in TERMINATING_SIGNALS})
    work_dir = Path(tempfile.mkdtemp(prefix="cosmos-demo-"))
    supervisor = Supervisor(work_dir)
    pipeline = None
    keep_logs = False
    try:
        pipeline = start_pipeline(supervisor, configured_redis_url, keep_running is not None, transport)
        scenario = Scenario(pipeline, plan(count, random.Random()))
        scenario.send()
        final = scenario.follow(DEADLINE_BASE_S + DEADLINE_PER_MESSAGE_S * count, lambda done: on_progress(done, count))
        summary = summarize(
            scenario.records(),
            count,
            scenario.finished - scenario.started,
            final,
            pipeline.private_redis,
            scenario.account_pause(),
            scenario.scheduled(),
        )
        summary["archive"] = str(DEMO_ARCHIVE.resolve())
        keep_logs = not final
        if keep_running is not None and pipeline.console is not None:
            keep_running(summary, pipeline.console)
        return summary, work_dir if keep_logs else None
    except DemoError as exc:
        keep_logs = True
        raise DemoError(f"{exc} (logs of every process in {work_dir})") from None
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave children running.
        for signum in (signal.SIGINT, *TERMINATING_SIGNALS):
            signal.signal(signum, signal.SIG_IGN)
        try:
            # Stops every child, then drops the demo's keys on a shared Redis (see demo/pipeline.py).
            supervisor.stop_all()
            if pipeline is not None:
                pipeline.close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if not keep_logs:
                shutil.rmtree(work_dir, ignore_errors=True)
