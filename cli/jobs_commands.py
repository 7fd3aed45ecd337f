"""`send`, `status`, `cancel`, `stats`: the producer API and the ledger from a shell."""

from __future__ import annotations

import click

from cli.common import CommandFailed, echo_json, one_line_errors, operator_name, settings_or_exit
from config.errors import EnqueueFailed
from ledger.explanations import explain
from ledger.stats import stats as ledger_stats
from producers.producer import SmsProducer


def _producer() -> SmsProducer:
    return SmsProducer(settings_or_exit())


@click.command()
@click.option("--to", required=True, help="Recipient: 0 followed by 14 digits.")
@click.option("--from", "sender", required=True, help="Sender name.")
@click.option("--text", required=True, help="Message text.")
@click.option("--callback", default=None, help="Your own delivery-status URL (else COSMOS_WEBHOOK_URL).")
@click.option("--idempotency-key", default=None, help="Same key, same message: sent once.")
@click.option(
    "--expires-in", type=click.IntRange(min=1), default=None, help="Deadline in seconds (from --at if given)."
)
@click.option(
    "--at",
    "send_at",
    default=None,
    metavar="ISO",
    help="Send no earlier than this ISO 8601 time with an offset, e.g. 2026-12-08T09:00:00+01:00.",
)
@one_line_errors
def send(to, sender, text, callback, idempotency_key, expires_in, send_at) -> None:
    """Enqueue one message; prints its job id."""
    try:
        click.echo(_producer().send_sms(to, sender, text, callback, idempotency_key, expires_in, send_at))
    except EnqueueFailed as exc:
        raise CommandFailed(f"{exc} (is Redis running? check REDIS_URL)") from None


@click.command()
@click.argument("job_id")
@one_line_errors
def status(job_id) -> None:
    """Print a job's outcome record as JSON (exit 1 if unknown)."""
    record = _producer().get_status(job_id)
    if record is None:
        raise CommandFailed(f"unknown job {job_id}")
    echo_json({**record, "explained": explain(record)})


@click.command()
@click.argument("job_id")
@one_line_errors
def cancel(job_id) -> None:
    """Cancel a job that has not been sent yet."""
    producer = _producer()
    done, why = producer.ledger.operate("cancel", job_id, by=operator_name())
    if not done:
        raise CommandFailed(f"not cancelled: {why}")
    click.echo(f"cancelled {job_id}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def stats(as_json) -> None:
    """Counts per state and dead reason, dead letters, price, resends, breaker."""
    figures = ledger_stats(_producer().ledger)
    if as_json:
        echo_json(figures)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cosmos-sms", show_header=False)
    for state, count in figures["states"].items():
        table.add_row(f"state {state}", str(count))
    for reason, count in figures["dead_reasons"].items():
        table.add_row(f"dead: {reason}", str(count))
    for name in (
        "dead_letter_size",
        "held_size",
        "total_price",
        "attempts",
        "ambiguous_resends",
        "extra_sends",
        "late",
        "receipts_overdue",
    ):
        table.add_row(name.replace("_", " "), str(figures[name]))
    for lane, depth in figures["queue_depth"].items():
        table.add_row(f"queue {lane}", f"{depth} messages, {figures['retry_due_size'][lane]} retrying")
    table.add_row("breaker", figures["breaker"]["state"])
    pause = figures["paused"]
    table.add_row("paused", f"{pause['kind']}: {pause['reason']} ({', '.join(pause['lanes'])})" if pause else "no")
    scheduled = figures["scheduled"]
    table.add_row("scheduled", f"{scheduled['waiting']} waiting, next at {scheduled['next_at'] or 'none'}")
    quiet = figures["quiet_hours"]
    table.add_row("quiet hours", f"on until {quiet['until']} ({quiet['waiting']} bulk waiting)" if quiet else "off")
    spend, budget = figures["spend_today"], figures["budget"]
    caps = [f"{budget['daily_message_cap']} messages" if budget["daily_message_cap"] else ""]
    caps.append(f"{budget['daily_budget']:g} USD" if budget["daily_budget"] else "")
    cap_text = " and ".join(c for c in caps if c) or "no cap"
    table.add_row(
        f"spend today ({spend['day']}, {budget['tz']})",
        f"{spend['messages']} messages, {spend['price']:g} USD ({cap_text})",
    )
    Console().print(table)


@click.group()
def batch() -> None:
    """Campaigns sent with send_bulk(batch_id=...)."""


@batch.command("status")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def batch_status(batch_id, as_json) -> None:
    """A batch's total and counts per state (exit 1 if unknown)."""
    info = _producer().get_batch(batch_id)
    if info is None:
        raise CommandFailed(f"unknown batch {batch_id}")
    if as_json:
        echo_json(info)
        return
    states = ", ".join(f"{state} {n}" for state, n in info["states"].items())
    click.echo(
        f"batch {batch_id}: {info['total']} job(s), created {info['created_at']}"
        f"{' (cancelled)' if info['cancelled'] else ''}: {states}"
    )


@batch.command("cancel")
@click.argument("batch_id")
@one_line_errors
def batch_cancel(batch_id) -> None:
    """Cancel every member not yet sent; the batch then takes no new members."""
    producer = _producer()
    if producer.get_batch(batch_id) is None:
        raise CommandFailed(f"unknown batch {batch_id}")
    click.echo(f"cancelled {producer.cancel_batch(batch_id)} job(s) of batch {batch_id}")
