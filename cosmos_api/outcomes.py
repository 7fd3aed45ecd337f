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
    """One attempt's result. `kind` is accepted | permanent | transient | ambiguous, or `release`: nothing
    was sent and the attempt does not count (a throttled route, no bind free); retry after `retry_after_s`.

    `route` (http | smpp) and `provider_status` (the HTTP code, or the SMPP command_status as 0x..)
    are for people: the attempt history shows them; no ledger decision depends on them."""

    kind: str
    status: str
    http: int = 0
    latency_ms: int = 0
    message_id: str = ""
    price: float = 0.0
    error: str = ""
    route: str = "http"
    provider_status: str = ""
    retry_after_s: float = 0.0

    @property
    def raw_status(self) -> str:
        return self.provider_status or (str(self.http) if self.http else "")
