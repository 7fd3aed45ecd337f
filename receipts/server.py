"""Running the receiver under uvicorn, its log lines through ours and never a query string."""

from __future__ import annotations

import uvicorn

from config.settings import Settings
from receipts.app import create_app

FORWARDED_ALLOW_IPS = "127.0.0.1"
"""Proxies whose X-Forwarded-For names the client (for the rate limit): a reverse proxy on this host."""


def run(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; logging must already be configured (configure_logging)."""
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        # The access log would print each callback URL, and its query string is the token.
        access_log=False,
        # None: uvicorn's loggers propagate to the root handler configure_logging set up.
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=FORWARDED_ALLOW_IPS,
        server_header=False,
    )
