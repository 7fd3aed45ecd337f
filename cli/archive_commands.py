"""`history`, `export`, `spend`, `archive migrate`, `forget`, `batch list`: the archive from a shell."""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from archive import SPEND_GROUPS
from cli.common import CommandFailed, echo_json, one_line_errors, operator_name, settings_or_exit
from ledger.schema import STATES

if TYPE_CHECKING:
    from archive.store import Archive
    from ledger.store import Ledger

# The archive's modules (SQLAlchemy, Alembic, pyarrow) are imported inside the commands that use them:
# every other `cosmos-sms` command starts without loading them (~0.6 s).

PARQUET_ROW_GROUP = 10_000
"""Rows per Parquet row group: what export holds in memory at once."""


def _iso(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an ISO 8601 time (e.g. 2026-05-01T00:00:00Z)", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _open() -> tuple[Ledger, Archive | None]:
    from archive.opening import open_archive
    from producers.producer import SmsProducer

    settings = settings_or_exit()
    ledger = SmsProducer(settings).ledger
    return ledger, open_archive(settings, ledger)


def _need_archive() -> tuple[Ledger, Archive]:
    ledger, archive = _open()
    if archive is None:
        raise CommandFailed("COSMOS_ARCHIVE_URL is none: no archive is kept")
    return ledger, archive


@click.command()
@click.option("--to", default=None, help="Only messages to this number.")
@click.option("--message-id", default=None, help="Only the message COSMOS gave this id.")
@click.option("--batch", default=None, help="Only members of this batch.")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only records in this state.")
@click.option("--since", default=None, help="Created at or after this time (ISO 8601).")
@click.option("--until", default=None, help="Created before this time (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Records per page.")
@click.option("--after", default=None, help="The cursor a previous page printed on standard error.")
@click.option("--json", "as_json", is_flag=True, help="Print an array of outcome records.")
@one_line_errors
def history(to, message_id, batch, state, since, until, limit, after, as_json) -> None:
    """Archived and live records created in the window, newest first; the next page's cursor goes to stderr."""
    from archive.history import BadCursor, parse_cursor
    from archive.history import history as find_history
    from archive.store import HistoryQuery

    try:
        cursor = parse_cursor(after)
    except BadCursor as exc:
        raise click.BadParameter(str(exc), param_hint="--after") from None
    q = HistoryQuery(to, message_id, batch, state, _iso(since, "--since"), _iso(until, "--until"), cursor)
    ledger, archive = _open()
    started = time.perf_counter()
    records, next_cursor = find_history(ledger, archive, q, limit)
    took_ms = (time.perf_counter() - started) * 1000
    if as_json:
        echo_json(records)
    else:
        for r in records:
            price = "" if r["price"] is None else f" {r['price']:.4f}"
            click.echo(f"{r['created_at']}  {r['job_id']}  {r['to']}  {r['state']}{price}")
    if next_cursor:
        click.echo(f"next: --after {next_cursor}", err=True)
    click.echo(f"({len(records)} record(s) in {took_ms:.1f} ms)", err=True)


@click.command()
@click.option("--since", required=True, help="Created at or after this time (ISO 8601).")
@click.option("--until", required=True, help="Created before this time (ISO 8601).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="File (default: stdout).")
@one_line_errors
def export(since, until, fmt, output) -> None:
    """Every archived record created in the window, one row each, streamed at constant memory."""
    from archive.rows import export_row

    start, end = _iso(since, "--since"), _iso(until, "--until")
    assert start is not None and end is not None
    _, archive = _need_archive()
    rows = (export_row(r) for r in archive.window(start, end))
    count = _write_parquet(rows, output) if fmt == "parquet" else _write_csv(rows, output)
    click.echo(f"exported {count} record(s)", err=True)


def _write_csv(rows: Any, output: str | None) -> int:
    from archive.rows import EXPORT_COLUMNS

    out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            count += 1
        return count
    finally:
        if output:
            out.close()


def _parquet_schema() -> Any:
    import pyarrow as pa

    from archive.rows import EXPORT_COLUMNS

    types = {"price": pa.float64(), "late": pa.bool_(), "redacted": pa.bool_()}
    types.update({n: pa.int64() for n in ("attempts", "ambiguous_resends", "extra_sends")})
    return pa.schema([(name, types.get(name, pa.string())) for name in EXPORT_COLUMNS])


def _write_parquet(rows: Any, output: str | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive.rows import EXPORT_COLUMNS

    schema = _parquet_schema()
    sink = output if output else pa.PythonFile(sys.stdout.buffer, mode="w")
    count, chunk = 0, []
    with pq.ParquetWriter(sink, schema) as writer:
        for row in rows:
            chunk.append(row)
            if len(chunk) == PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_pylist([dict(zip(EXPORT_COLUMNS, r)) for r in chunk], schema))
                count, chunk = count + len(chunk), []
        if chunk or count == 0:
            writer.write_table(pa.Table.from_pylist([dict(zip(EXPORT_COLUMNS, r)) for r in chunk], schema))
            count += len(chunk)
    return count


@click.command()
@click.option("--by", type=click.Choice(SPEND_GROUPS), default="day", show_default=True)
@click.option("--since", default=None, help="From this day (ISO 8601).")
@click.option("--until", default=None, help="To this day, included (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print an array of {key, messages, accepted, delivered, price}.")
@one_line_errors
def spend(by, since, until, as_json) -> None:
    """Messages, accepted, delivered and total price per group, from the archive's daily figures."""
    _, archive = _need_archive()
    groups = archive.spend(by, _iso(since, "--since"), _iso(until, "--until"))
    if as_json:
        echo_json(groups)
        return
    click.echo(f"{by:<24} {'messages':>10} {'accepted':>10} {'delivered':>10} {'price':>14}")
    for g in groups:
        key = g["key"] if g["key"] is not None else "(none)"
        click.echo(f"{key:<24} {g['messages']:>10} {g['accepted']:>10} {g['delivered']:>10} {g['price']:>14.4f}")


@click.group()
def archive() -> None:
    """The SQL archive of every record (COSMOS_ARCHIVE_URL)."""


@archive.command("migrate")
@one_line_errors
def archive_migrate() -> None:
    """Create or upgrade the archive's schema."""
    from archive.engine import create_archive_engine, masked
    from archive.schema import migrate

    settings = settings_or_exit()
    if not settings.archiving:
        raise CommandFailed("COSMOS_ARCHIVE_URL is none: no archive to migrate")
    url = settings.archive_url.get_secret_value()
    before, after = migrate(create_archive_engine(url))
    click.echo(f"archive {masked(url)}: schema {before or 'none'} -> {after}")


@click.command()
@click.option("--to", "number", required=True, help="The number to erase.")
@one_line_errors
def forget(number) -> None:
    """Erase a number: its records are redacted in Redis and the archive, and the inbound messages
    it sent are erased, in steps (audited)."""
    from archive.erasure import forget_in_archive, forget_in_redis, forget_inbound
    from archive.redaction import redact_number
    from ledger.controls import Controls

    ledger, archive_ = _open()
    live = forget_in_redis(ledger, number)
    archived = forget_in_archive(archive_, number) if archive_ is not None else 0
    inbound = forget_inbound(ledger, number)
    shown = redact_number(number) or ""
    Controls(ledger.redis, ledger.keys).audit(
        operator_name(), "forget", shown, live + archived, f"live {live}, archived {archived}, inbound {inbound}"
    )
    click.echo(
        f"forgot {shown}: {live} live record(s), {archived} archived row(s) redacted, "
        f"{inbound} inbound message(s) erased"
    )


@click.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Batches per page.")
@click.option("--after", default=None, help="The cursor a previous page printed on standard error.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def batch_list(limit, after, as_json) -> None:
    """Batches in the archive, newest first, paged."""
    _, archive_ = _need_archive()
    before = tuple(after.split("|", 1)) if after and "|" in after else None
    if after and before is None:
        raise click.BadParameter("not a cursor printed by a previous page", param_hint="--after")
    page = archive_.batches(limit + 1, before)
    more, page = len(page) > limit, page[:limit]
    if as_json:
        echo_json(page)
    else:
        for b in page:
            click.echo(
                f"{b['batch_id']}  {b['first_day']}..{b['last_day']}  {b['messages']} message(s), "
                f"{b['delivered']} delivered, {b['price']:.4f}"
            )
    if more:
        click.echo(f"next: --after {page[-1]['last_day']}|{page[-1]['batch_id']}", err=True)
