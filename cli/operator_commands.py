"""`dead`, `held`, `suppression`: what operators review and repair."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from cli.common import CommandFailed, checked_numbers, one_line_errors, operator_name, settings_or_exit
from ledger import operations
from ledger.explanations import DEAD_REASONS, dead_reason, explain, known_reason
from ledger.operations import apply, apply_to_pages
from producers.producer import SmsProducer


def _producer() -> SmsProducer:
    return SmsProducer(settings_or_exit())


def _known_reason(ctx, param, reason: str | None) -> str | None:
    """A dead reason the ledger can give, or bad usage naming the known ones."""
    if reason is None or known_reason(reason):
        return reason
    raise click.BadParameter(f"unknown dead reason {reason!r}; known: {', '.join(sorted(DEAD_REASONS))}, smpp_0x<code>")


def _print_records(records: Iterable[dict[str, Any]], as_json: bool) -> None:
    """Records as they are read, page by page: a JSON array streamed, or a line each."""
    count = 0
    reasons: set[str] = set()
    if as_json:
        click.echo("[", nl=False)
    for r in records:
        if as_json:
            click.echo(
                ("," if count else "") + json.dumps({**r, "explained": explain(r)}, ensure_ascii=False), nl=False
            )
        else:
            click.echo(
                f"{r['job_id']}  {r['state']:<9} {r['dead_reason'] or '':<18} {r['updated_at']}  "
                f"{r['last_error'] or ''}"
            )
            if r["dead_reason"]:
                reasons.add(r["dead_reason"])
        count += 1
    click.echo("]" if as_json else f"{count} job(s)")
    for reason in sorted(reasons):
        why = dead_reason(reason)
        if why is not None:
            click.echo(f"{reason}: {why.line()}")


def _apply(producer: SmsProducer, action: str, job_ids: list[str]) -> None:
    """Run an operator action on the named jobs, in bounded steps; republish what goes back to a queue."""
    failed = 0
    for job_id, done, lane_or_why in apply(producer.ledger, action, job_ids, operator_name()):
        if not done:
            failed += 1
            click.echo(f"{job_id}: not done: {lane_or_why}", err=True)
        else:
            click.echo(f"{job_id}: {action.replace('_', ' ')}")
    if failed:
        raise CommandFailed(f"{failed} of {len(job_ids)} job(s) not done")


@click.group()
def dead() -> None:
    """The dead-letter queue."""


@dead.command("list")
@click.option("--reason", default=None, callback=_known_reason, help="Only this dead reason.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of outcome records.")
@one_line_errors
def dead_list(reason, as_json) -> None:
    """List dead jobs, oldest first."""
    producer = _producer()
    _print_records(producer.ledger.listed(producer.keys.dead, reason), as_json)


@dead.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead job.")
@click.option("--reason", default=None, help="Every dead job with this reason.")
@one_line_errors
def dead_requeue(job_ids, everything, reason) -> None:
    """Send dead jobs again with a fresh attempt budget and deadline."""
    if bool(job_ids) + everything + (reason is not None) != 1:
        raise click.UsageError("give JOB_IDs, --all or --reason (one of them)")
    producer = _producer()
    if job_ids:
        _apply(producer, "requeue", list(job_ids))
        return
    tally = apply_to_pages(producer.ledger, "requeue", producer.ledger.dead_ids(reason), by=operator_name())
    click.echo(f"requeued {tally['done']} job(s)" + (f", {tally['refused']} refused" if tally["refused"] else ""))


@dead.command("purge")
@click.option("--reason", default=None, help="Only this dead reason.")
@one_line_errors
def dead_purge(reason) -> None:
    """Drop dead jobs and their records."""
    producer = _producer()
    tally = apply_to_pages(producer.ledger, "purge", producer.ledger.dead_ids(reason), by=operator_name())
    click.echo(f"purged {tally['done']} job(s)")


@click.group()
def held() -> None:
    """Jobs held after an ambiguous attempt (COSMOS_AMBIGUOUS_POLICY=hold)."""


@held.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of outcome records.")
@one_line_errors
def held_list(as_json) -> None:
    """List held jobs."""
    producer = _producer()
    _print_records(producer.ledger.listed(producer.keys.held), as_json)


@held.command("resend")
@click.argument("job_ids", nargs=-1, required=True)
@one_line_errors
def held_resend(job_ids) -> None:
    """Send held jobs again (counted as ambiguous resends)."""
    _apply(_producer(), "resend", list(job_ids))


@held.command("mark-sent")
@click.argument("job_ids", nargs=-1, required=True)
@one_line_errors
def held_mark_sent(job_ids) -> None:
    """Record held jobs as sent without sending again."""
    _apply(_producer(), "mark_sent", list(job_ids))


@click.group()
def suppression() -> None:
    """Numbers that opted out (COSMOS said blacklist)."""


@suppression.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def suppression_list(as_json) -> None:
    """List suppressed numbers."""
    numbers = _producer().ledger.suppressed()  # SSCAN pages: never one long call, never capped
    if as_json:
        click.echo(json.dumps(list(numbers)))
    else:
        for number in numbers:
            click.echo(number)


@suppression.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also lift an opt-out (the recipient's own STOP); audited as --force.")
@one_line_errors
def suppression_remove(numbers, force) -> None:
    """Lift the operator and blacklist reasons of numbers (their dead jobs can then be requeued).

    A number that opted out stays suppressed unless --force; one stays while any reason remains."""
    tally = operations.unsuppress(_producer().ledger, checked_numbers(numbers), operator_name(), force)
    click.echo(f"removed {tally['removed']} number(s)")
    if tally["kept"]:
        click.echo(f"{tally['kept']} number(s) stay suppressed (opted out: --force lifts that)", err=True)


@suppression.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def suppression_show(number, as_json) -> None:
    """Why NUMBER is suppressed: each reason (blacklist, opt_out, operator) and since when."""
    shown = operations.suppression_of(_producer().ledger, checked_numbers((number,))[0])
    if as_json:
        click.echo(json.dumps(shown))
        return
    click.echo(f"{number}: {'suppressed' if shown['suppressed'] else 'not suppressed'}")
    for row in shown["reasons"]:
        click.echo(f"  {row['reason']} since {row['since'] or 'unknown'}")
