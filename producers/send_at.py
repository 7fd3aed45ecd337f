"""`send_at`: when a message may go, as the caller wrote it, checked before anything is recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from config.errors import InvalidMessage

_EXAMPLE = "e.g. 2026-12-08T09:00:00+01:00 or 2026-12-08T08:00:00Z"


def parse_send_at(value: Any) -> float | None:
    """Epoch seconds of an aware datetime or an ISO 8601 string with an offset; None for None.

    A time without an offset is refused: read in the server's zone, it would go hours off.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidMessage("invalid_json", "send_at", f"is not an ISO 8601 time ({_EXAMPLE})") from None
    else:
        raise InvalidMessage(
            "invalid_json", "send_at", f"must be an aware datetime or an ISO 8601 string with an offset ({_EXAMPLE})"
        )
    if moment.utcoffset() is None:
        raise InvalidMessage("invalid_json", "send_at", f"has no UTC offset, so its moment is ambiguous ({_EXAMPLE})")
    return moment.timestamp()


def check_ahead(send_at: float | None, now: float, max_ahead_s: int) -> float | None:
    """The send_at to record: None when it is not ahead of `now` (a past time means now);
    InvalidMessage when it is more than `max_ahead_s` ahead."""
    if send_at is None or send_at <= now:
        return None
    if send_at > now + max_ahead_s:
        raise InvalidMessage(
            "invalid_json",
            "send_at",
            f"is more than COSMOS_MAX_SCHEDULE_AHEAD_S ({max_ahead_s} s, {max_ahead_s / 86400:g} days) ahead",
        )
    return send_at
