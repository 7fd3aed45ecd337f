"""`cosmos-sms webhook`: run the delivery-status receiver."""

from __future__ import annotations

import sys

import click

from cli.common import refuse_old_redis
from config.logging import configure_logging
from config.settings import SettingsError, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@click.command(epilog="Endpoints and the token scheme are described in docs/receiver.md.")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface, e.g. in a container).",
)
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--metrics-host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address of the separate metrics listener (with --metrics-port).",
)
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Serve /metrics on this port of --metrics-host instead of the public address.",
)
def webhook(host: str, port: int, metrics_host: str, metrics_port: int | None) -> None:
    """Run the delivery-status receiver: POST /delivery-status, GET /healthz, GET /metrics.

    COSMOS posts each message's delivery receipt to the callback URL the worker gave it:
    COSMOS_WEBHOOK_URL plus a per-message token signed with COSMOS_WEBHOOK_SECRET (the
    receiver also accepts COSMOS_WEBHOOK_SECRET_PREVIOUS during a rotation). Receipts move
    `sent` jobs to `delivered` or `not_delivered` in Redis (REDIS_URL).

    /metrics is public unless COSMOS_METRICS_TOKEN is set (then it needs `Authorization: Bearer
    TOKEN`) or --metrics-port moves it to a loopback listener of its own.
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        click.echo("error: COSMOS_WEBHOOK_SECRET is not set: the receiver could verify no callback token", err=True)
        sys.exit(2)
    refuse_old_redis(settings, "receiver")
    configure_logging(settings)
    # Imported here so `cosmos-sms --help` does not pay for FastAPI and uvicorn.
    from receipts.server import run

    run(settings, host, port, metrics_host, metrics_port)
