"""`forwards`: callbacks forwarded to applications that failed for good, and sending them again."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.common import CommandFailed, echo_json, one_line_errors, settings_or_exit
from config.redis_client import redis_client
from ledger.forwards import Forwards


def _forwards() -> Forwards:
    settings = settings_or_exit()
    return Forwards(redis_client(settings, "cli"), settings)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@click.group()
def forwards() -> None:
    """Outcomes forwarded to applications' own callbacks that failed for good."""


@forwards.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def forwards_list(as_json) -> None:
    """List forwards given up after their retry window, oldest first (every page)."""
    store = _forwards()
    if as_json:
        echo_json([forward.to_dict() for forward in store.iter_failed()])
        return
    shown = 0
    for forward in store.iter_failed():
        shown += 1
        click.echo(
            f"{forward.fwd_id}  job {forward.job_id}  {_when(forward.failed_ts)}  "
            f"{forward.attempts} attempt(s)  {forward.url}  {forward.last_error or ''}"
        )
    click.echo(f"{shown} failed forward(s); {store.due_count()} waiting for a (next) try")


@forwards.command("retry")
@click.argument("fwd_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every failed forward.")
@one_line_errors
def forwards_retry(fwd_ids, everything) -> None:
    """Send failed forwards again, with a new retry window."""
    if bool(fwd_ids) == everything:
        raise click.UsageError("give forward IDs or --all (one of them)")
    store = _forwards()
    moved = store.retry_all() if everything else store.retry(list(fwd_ids))
    click.echo(f"{moved} forward(s) queued again")
    if fwd_ids and moved < len(fwd_ids):
        raise CommandFailed(f"{len(fwd_ids) - moved} of {len(fwd_ids)} forward(s) are not in the failed list")
