"""Run the sandbox: uvloop when importable, no access log, clean shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from sandbox.app import build_app
from sandbox.config import SandboxConfig

SHUTDOWN_TIMEOUT_S = 1.0
"""Seconds in-flight answers get to finish at shutdown."""


def use_uvloop() -> bool:
    """Install uvloop's event loop policy if uvloop is installed; say whether it was."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def describe(config: SandboxConfig, loop_name: str) -> str:
    """The start-up line: where to send, which account; never the secret."""
    faults = ", ".join(f"{k}={v}" for k, v in config.faults.as_dict().items())
    return (
        f"COSMOS sandbox on http://{config.host}:{config.port}/v1.0/sms/ "
        f"(COSMOS_API_URL=http://{config.host}:{config.port}/v1.0), api_key={config.api_key}, "
        f"receipt_retries={config.receipt_retries}, seed={config.seed}, {faults}, loop={loop_name}"
    )


def run(config: SandboxConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    loop_name = "uvloop" if use_uvloop() else "asyncio"
    app = build_app(config)

    def announce(_text: str) -> None:
        print(describe(config, loop_name), file=sys.stderr, flush=True)

    # access_log=None: one log line per request would cost more than the request itself.
    # shutdown_timeout: a stalled answer must not hold a SIGTERM for the default 60 s.
    web.run_app(
        app, host=config.host, port=config.port, access_log=None, print=announce, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
