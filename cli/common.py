"""What every command shares: settings from the environment, one-line errors, JSON output."""

from __future__ import annotations

import getpass
import json
import os
from functools import wraps

import click
import redis

from config.errors import CosmosSmsError, SettingsError
from config.settings import Settings, load_settings


class CommandFailed(click.ClickException):
    """A failure the output explains in one line (exit 1), printed without an 'Error:' label."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


class BadSettings(CommandFailed):
    """A refused setting: one line naming the variable, exit 2 (bad usage), as every entry point does."""

    exit_code = 2


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None


def one_line_errors(command):
    """Turn expected failures into one clear line and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except SettingsError as exc:
            raise BadSettings(str(exc)) from None
        except CosmosSmsError as exc:
            raise CommandFailed(str(exc)) from None
        except redis.RedisError as exc:
            raise CommandFailed(f"Redis is not reachable ({exc}); check REDIS_URL") from None

    return wrapper


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


def operator_name() -> str:
    """Who the audit log names for a command-line action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def checked_numbers(numbers: tuple[str, ...]) -> list[str]:
    """NUMBER arguments, each 0 followed by 14 digits; a bad one fails naming it, before anything changes."""
    from console.search import NUMBER

    bad = [n for n in numbers if not NUMBER.match(n)]
    if bad:
        raise click.BadParameter(f"{bad[0]}: must be 0 followed by 14 digits", param_hint="NUMBER")
    return list(numbers)
