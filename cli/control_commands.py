"""`pause`, `resume`, `suppression add`, `hash-password`: operator controls from the command line."""

from __future__ import annotations

import getpass
import os
import sys

import click

from cli.common import CommandFailed, one_line_errors, settings_or_exit
from config.keys import LANES
from config.redis_client import redis_client
from ledger.controls import Controls
from ledger.store import Ledger

_LANE = click.Choice(LANES)


def _ledger() -> Ledger:
    settings = settings_or_exit()
    return Ledger(redis_client(settings, "cli"), settings)


def _controls(ledger: Ledger | None = None) -> Controls:
    ledger = ledger or _ledger()
    return Controls(ledger.redis, ledger.keys)


def _operator() -> str:
    """Who the audit log names for a command-line action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


@click.command()
@click.option("--lane", type=_LANE, default=None, help="Only this lane (default: all sending).")
@click.option("--reason", default="", help="Why; shown in stats and the console.")
@one_line_errors
def pause(lane, reason) -> None:
    """Pause sending (an operator's pause: no probe lifts it; `resume` does)."""
    _controls().pause(lane, reason, _operator())
    click.echo(f"paused {lane or 'all sending'}")


@click.command()
@click.option("--lane", type=_LANE, default=None, help="Only this lane (default: the pause of all sending).")
@one_line_errors
def resume(lane) -> None:
    """Lift an operator's pause."""
    lifted = _controls().resume(lane, _operator())
    click.echo(f"resumed {lane or 'all sending'}" if lifted else f"{lane or 'all sending'} was not paused")


def add_suppression_command(group: click.Group) -> None:
    """`suppression add NUMBER...` joins the existing `suppression` group."""

    @group.command("add")
    @click.argument("numbers", nargs=-1, required=True)
    @one_line_errors
    def suppression_add(numbers) -> None:
        """Put numbers on the suppression list by hand (they are then never sent to)."""
        from console.search import NUMBER

        bad = [n for n in numbers if not NUMBER.match(n)]
        if bad:
            raise click.BadParameter(f"{bad[0]}: must be 0 followed by 14 digits", param_hint="NUMBER")
        ledger = _ledger()
        added = ledger.suppress(numbers)
        target = numbers[0] if len(numbers) == 1 else f"{len(numbers)} numbers"
        _controls(ledger).audit(_operator(), "suppression add", target, added)
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
