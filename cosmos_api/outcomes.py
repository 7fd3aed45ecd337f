"""Typed outcomes of one request to COSMOS: what the code above the client sees."""

from __future__ import annotations

from dataclasses import dataclass

PERMANENT_STATUSES = frozenset(
    {
        "invalid_to",
        "invalid_from",
        "invalid_text",
        "invalid_callback",
        "invalid_json",
        "failed",
        "spam",
        "blacklist",
        "unauthorized",
        "large_request",
    }
)
TRANSIENT_STATUSES = frozenset({"timeout", "internal_error"})
TRANSIENT_HTTP = frozenset({404, 408, 429, 500, 503})
"""Not accepted, worth retrying; 404 is a wrong COSMOS_API_URL, which must not kill a backlog."""
AMBIGUOUS_HTTP = frozenset({502, 504})
"""A gateway answered: COSMOS may or may not have taken the request."""


@dataclass(frozen=True)
class Outcome:
    """One attempt's result. `kind` is accepted | permanent | transient | ambiguous."""

    kind: str
    status: str
    http: int = 0
    latency_ms: int = 0
    message_id: str = ""
    price: float = 0.0
    error: str = ""
