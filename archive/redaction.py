"""Redaction, one-way: a number keeps its last 3 digits, a text its length, an idempotency key becomes
its SHA-256, a callback loses its query string."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

KEEP_DIGITS = 3
MASK = "*"


def redact_number(number: str | None) -> str | None:
    if not number:
        return number
    return MASK * max(0, len(number) - KEEP_DIGITS) + number[-KEEP_DIGITS:]


def redact_text(text: str | None) -> str | None:
    return None if text is None else MASK * len(text)


def redact_key(key: str | None) -> str | None:
    if not key or key.startswith("sha256:"):
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def redact_callback(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def redacted_fields(to: str | None, text: str | None, idem: str | None, callback: str | None) -> dict[str, str | None]:
    """The redacted values of a record's personal fields."""
    return {
        "to": redact_number(to),
        "text": redact_text(text),
        "idempotency_key": redact_key(idem),
        "callback": redact_callback(callback),
    }
