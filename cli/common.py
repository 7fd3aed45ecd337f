"""What every command shares: settings from the environment, one-line errors, JSON output."""

from __future__ import annotations

import json
from functools import wraps

import click
import redis

from config.settings import Settings, SettingsError, load_settings
from config.errors import CosmosSmsError


class CommandFailed(click.ClickException):
    """A failure the output explains in one line (exit 1), printed without an 'Error:' label."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def one_line_errors(command):
    """Turn expected failures into one clear line and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except (CosmosSmsError, SettingsError) as exc:
            raise CommandFailed(str(exc)) from None
        except redis.RedisError as exc:
            raise CommandFailed(f"Redis is not reachable ({exc}); check REDIS_URL") from None

    return wrapper


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))
