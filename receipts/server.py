"""Running the receiver under uvicorn, its log lines through ours and never a query string."""

from __future__ import annotations

import ipaddress

import structlog
import uvicorn
from prometheus_client import start_http_server

from config.settings import Settings
from receipts.app import create_app


def run(
    settings: Settings, host: str, port: int, metrics_host: str = "127.0.0.1", metrics_port: int | None = None
) -> None:
    """Serve until SIGINT/SIGTERM; logging must already be configured (configure_logging).

    With `metrics_port`, /metrics leaves the public address and is served (plain HTTP, any path)
    on `metrics_host:metrics_port` instead, from a thread of this process.
    """
    if metrics_port is None and settings.metrics_token is None and not _loopback(host):
        structlog.get_logger("cosmos.receipts").warning(
            "/metrics is served unprotected on a public address: set COSMOS_METRICS_TOKEN or use --metrics-port",
            host=host,
        )
    app = create_app(settings, serve_metrics=metrics_port is None)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host, registry=app.state.registry)
    uvicorn.run(
        app,
        host=host,
        port=port,
        # The access log would print each callback URL, and its query string is the token.
        access_log=False,
        # None: uvicorn's loggers propagate to the root handler configure_logging set up.
        log_config=None,
        # X-Forwarded-For names the client (for the failed-authentication limit) when it comes from
        # a trusted proxy: 127.0.0.1 unless uvicorn's FORWARDED_ALLOW_IPS variable says otherwise.
        proxy_headers=True,
        server_header=False,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
