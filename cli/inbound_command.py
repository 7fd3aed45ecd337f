"""`inbound list`: inbound messages (over SMPP), newest first, paged."""

from __future__ import annotations

import click

from cli.common import echo_json, one_line_errors, settings_or_exit
from config.redis_client import redis_client
from ledger.schema import STEP
from ledger.store import Ledger


@click.group()
def inbound() -> None:
    """Inbound messages from recipients (a STOP, a reply), kept as long as records."""


@inbound.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON: an array of {from, to, text, received_at, id}.")
@click.option("--limit", type=click.IntRange(1, STEP), default=50, show_default=True, help="Messages per page.")
@click.option("--before", default="+", help="Show messages older than this id (the last id of the previous page).")
@one_line_errors
def list_inbound(as_json: bool, limit: int, before: str) -> None:
    """Newest first; the next page's cursor is printed on standard error."""
    settings = settings_or_exit()
    page = Ledger(redis_client(settings, "cli"), settings).inbound_page(before, limit)
    if as_json:
        echo_json(page)
    else:
        for m in page:
            click.echo(f"{m['received_at']}  {m['from']} -> {m['to']}  {m['text']}")
    if len(page) == limit:
        click.echo(f"next page: --before {page[-1]['id']}", err=True)
