"""`cosmos-sms demo`: the whole pipeline on this machine, with nothing set up beforehand."""

from __future__ import annotations

import signal

import click

from cli.common import CommandFailed, echo_json, one_line_errors, settings_or_exit
from demo.scenario import MIN_COUNT


@click.command()
@click.option("--count", type=click.IntRange(min=MIN_COUNT), default=200, show_default=True, help="Messages to send.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (no progress bar).")
@click.option(
    "--console",
    "with_console",
    is_flag=True,
    help="Also start the operations console; after the summary keep everything running and print "
    "its URL and a one-time login, until Ctrl-C.",
)
@click.option(
    "--redis-url",
    default=None,
    help="Use this Redis (under a fresh key prefix, removed afterwards) instead of a private one.",
)
@click.option(
    "--transport",
    type=click.Choice(["http", "smpp"]),
    default="http",
    show_default=True,
    help="The route: smpp runs the sandbox's SMSC and sends every message over a bind (docs/smpp.md).",
)
@one_line_errors
def demo(count, as_json, with_console, redis_url, transport) -> None:
    """Run Redis, the sandbox, the receiver and a worker, send COUNT messages, and report.

    Starts a private Redis (the system redis-server 7.0 or newer, else the valkey-server of the
    `demo` extra) unless --redis-url names one; REDIS_URL is never used, so a Redis of your own
    stays untouched. The messages take every path: accepted and delivered,
    transient faults then accepted, failed, spam, blacklist, suppressed, not delivered, and
    an account refused for a moment (401: sending pauses and resumes, nothing dead).
    Ctrl-C or SIGTERM stops every process it started; they also die with it if it is killed.
    """
    # Imported here so `cosmos-sms --help` does not pay for the demo's imports.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from demo.pipeline import NoRedis
    from demo.processes import DemoError
    from demo.report import render
    from demo.runner import run_demo

    settings_or_exit()  # a refused setting stops the demo before it starts anything
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=as_json,
    )
    starting = progress.add_task("starting redis, sandbox, receiver and worker", total=None)
    following = None

    def on_progress(done: int, total: int) -> None:
        nonlocal following
        if following is None:
            progress.remove_task(starting)
            following = progress.add_task("jobs in a final state", total=total)
        progress.update(following, completed=done)

    def show(summary: dict, console: Console) -> None:
        if as_json:
            echo_json(summary)
        else:
            render(summary, console)

    def keep_running(summary: dict, login) -> None:
        progress.stop()
        show(summary, Console())
        click.echo(
            f"\nconsole: {login.url}  user: {login.user}  password: {login.password}"
            "\neverything keeps running; Ctrl-C stops it all"
        )
        while True:
            signal.pause()  # until Ctrl-C or SIGTERM (both raise KeyboardInterrupt in run_demo)

    try:
        with progress:
            summary, kept_logs = run_demo(
                redis_url, count, on_progress, keep_running if with_console else None, transport
            )
    except NoRedis as exc:
        raise CommandFailed(str(exc)) from None
    except DemoError as exc:
        raise CommandFailed(f"demo failed: {exc}") from None
    except KeyboardInterrupt:
        if with_console:
            click.echo("stopped: every process the demo started has been stopped", err=True)
            return
        raise CommandFailed("demo interrupted; every process it started has been stopped") from None
    show(summary, Console())
    if not summary["final"]:
        raise CommandFailed(f"not every job reached a final state in time (logs in {kept_logs})")
