"""Running the receiver under uvicorn, its log lines through ours and never a query string."""

from __future__ import annotations

import uvicorn

from config.settings import Settings
from receipts.app import create_app


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
        # X-Forwarded-For names the client (for the rate limit) when it comes from a trusted
        # proxy: 127.0.0.1 unless uvicorn's FORWARDED_ALLOW_IPS variable says otherwise.
        proxy_headers=True,
        server_header=False,
    )
