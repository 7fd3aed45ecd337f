"""`pause`, `resume`, `suppression add`, `hash-password`: operator controls from the command line."""

from __future__ import annotations

import sys

import click

from cli.common import CommandFailed, checked_numbers, one_line_errors, operator_name, settings_or_exit
from config.keys import LANES
from config.redis_client import redis_client
from ledger import operations
from ledger.controls import Controls
from ledger.store import Ledger

_LANE = click.Choice(LANES)


def _ledger() -> Ledger:
    settings = settings_or_exit()
    return Ledger(redis_client(settings, "cli"), settings)


def _controls(ledger: Ledger | None = None) -> Controls:
    ledger = ledger or _ledger()
    return Controls(ledger.redis, ledger.keys)


@click.command()
@click.option("--lane", type=_LANE, default=None, help="Only this lane (default: all sending).")
@click.option("--reason", default="", help="Why; shown in stats and the console.")
@one_line_errors
def pause(lane, reason) -> None:
    """Pause sending (an operator's pause: no probe lifts it; `resume` does)."""
    _controls().pause(lane, reason, operator_name())
    click.echo(f"paused {lane or 'all sending'}")


@click.command()
@click.option("--lane", type=_LANE, default=None, help="Only this lane (default: the pause of all sending).")
@click.option(
    "--budget",
    is_flag=True,
    help="Lift the budget's pause (a daily cap reached) for the rest of the budget day, instead.",
)
@one_line_errors
def resume(lane, budget) -> None:
    """Lift an operator's pause, or with --budget the budget's pause until the budget day ends.

    A plain `resume` never lifts the budget's pause; the next budget day does, by itself.
    """
    if budget:
        if lane:
            raise click.UsageError("--budget lifts the budget's pause of every lane: give no --lane")
        done, detail = operations.resume_budget(_ledger(), operator_name())
        click.echo(f"resumed sending for the rest of the budget day ({detail} reached)" if done else detail)
        return
    lifted = _controls().resume(lane, operator_name())
    click.echo(f"resumed {lane or 'all sending'}" if lifted else f"{lane or 'all sending'} was not paused")


def add_suppression_command(group: click.Group) -> None:
    """`suppression add NUMBER...` joins the existing `suppression` group."""

    @group.command("add")
    @click.argument("numbers", nargs=-1, required=True)
    @one_line_errors
    def suppression_add(numbers) -> None:
        """Put numbers on the suppression list by hand (they are then never sent to)."""
        added = operations.suppress(_ledger(), checked_numbers(numbers), operator_name())
        click.echo(f"added {added} number(s)")


@click.command("hash-password")
def hash_password() -> None:
    """Read a password and print its hash in the form COSMOS_CONSOLE_USERS takes.

    From a terminal it asks twice without echo; otherwise it reads standard input's first line.
    """
    from console.users import encode_hash

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandFailed("password: empty")
    click.echo(encode_hash(password))
