"""What every command shares: settings from the environment, one-line errors, JSON output."""

from __future__ import annotations

import getpass
import json
import os
from functools import wraps

import click
import redis

from config.errors import CosmosSmsError, SettingsError
from config.numbers import NUMBER
from config.redis_client import Role, redis_client, require_redis_version
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


def refuse_old_redis(settings: Settings, role: Role) -> None:
    """A server process refuses a Redis older than 7.0 at start, in one line (exit 2); an unreachable
    one is left to its own retries."""
    try:
        client = redis_client(settings, role)
        try:
            require_redis_version(client)
        finally:
            client.close()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except redis.RedisError:
        pass


def operator_name() -> str:
    """Who runs this command, as the timeline and the audit name operators: `cli:<login>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return f"cli:uid{os.getuid()}"


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


def checked_numbers(numbers: tuple[str, ...]) -> list[str]:
    """NUMBER arguments, each 0 followed by 14 digits; a bad one fails naming it, before anything changes."""
    bad = [n for n in numbers if not NUMBER.fullmatch(n)]
    if bad:
        raise click.BadParameter(f"{bad[0]}: must be 0 followed by 14 digits", param_hint="NUMBER")
    return list(numbers)
