"""The sandbox's start-up configuration, built once by the CLI (or a test) and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.faults import FaultSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8900
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_API_SECRET = "sandbox-secret"
DEFAULT_RECEIPT_RETRIES = 3
"""Retries of a failed callback after the first attempt (so 4 attempts in all)."""


@dataclass
class SandboxConfig:
    """Everything fixed for the life of one sandbox process; `faults` is the run-time changeable part."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = DEFAULT_API_KEY
    api_secret: str = field(default=DEFAULT_API_SECRET, repr=False)
    receipt_retries: int = DEFAULT_RECEIPT_RETRIES
    seed: int | None = None
    unauthorized_s: float = 0.0
    """Seconds from start during which every SMS request answers 401 unauthorized (0: none)."""
    faults: FaultSettings = field(default_factory=FaultSettings)
    smpp_port: int | None = None
    """Also serve the SMSC simulator on this port (sandbox/smsc.py); its credentials are the API key
    (system_id) and secret (password)."""
