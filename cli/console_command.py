"""`cosmos-sms console`: run the operations console (web) on localhost by default."""

from __future__ import annotations

import sys

import click

from cli.common import refuse_old_redis
from config.logging import configure_logging
from config.settings import SettingsError, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8300


@click.command(epilog="Pages, roles and security are described in docs/console.md.")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on; keep it on localhost or put the operator's TLS proxy in front.",
)
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
def console(host: str, port: int) -> None:
    """Run the operations console: messages, dead letters, held jobs, controls, audit log.

    Users come from COSMOS_CONSOLE_USERS (`name:role:hash` entries separated by spaces,
    role viewer or operator, hash from `cosmos-sms hash-password`).
    """
    from console.users import UsersError, parse_users

    try:
        settings = load_settings()
        users = parse_users(settings.console_users.get_secret_value() if settings.console_users else None)
    except (SettingsError, UsersError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    refuse_old_redis(settings, "console")
    configure_logging(settings)
    # Imported here so `cosmos-sms --help` does not pay for FastAPI and uvicorn.
    import uvicorn

    from console.app import create_app

    app = create_app(settings, users=users, host=host)
    click.echo(f"cosmos-sms console on http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
