"""The message rules of the contract: one reading of the COSMOS spec for producers and sandbox.

`validate_message` raises `InvalidMessage` with COSMOS's status name (`invalid_from`) and the
field as the Python API names it (`sender`); `body_size`
measures a request body the way COSMOS's 4 KB limit is applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

from config.errors import InvalidMessage
from config.numbers import NUMBER

MAX_BODY_BYTES = 4096
"""COSMOS answers 413 `large_request` above 4 KB of request body."""

GSM_MAX_UNITS = 180
"""GSM 03.38 text must be shorter than 180 units (extension characters count two)."""

UCS2_MAX_UNITS = 70
"""Any other text is UCS-2 and must be shorter than 70 UTF-16 code units."""

CREDENTIALS_ALLOWANCE_BYTES = 256
"""Room producers leave for fields they cannot see: api_key, api_secret, callback token."""


GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def text_units(text: str) -> tuple[str, int]:
    """The encoding COSMOS would use for `text` and its length in that encoding's units."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text):
        return "gsm", sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
    return "ucs2", len(text.encode("utf-16-le")) // 2


def check_to(to: object) -> str:
    if not isinstance(to, str) or not NUMBER.fullmatch(to):
        raise InvalidMessage("invalid_to", "to", "must be a 0 followed by 14 ASCII digits")
    return to


SENDER_FIELD = "sender"
"""What the Python API calls COSMOS's `from` (a keyword in Python); errors name the field the caller wrote."""


def check_from(sender: object, field: str = SENDER_FIELD) -> str:
    """COSMOS's `from` rule; `field` is the name the caller used (`sender` in Python, `from` on the wire)."""
    if not isinstance(sender, str) or not sender.strip():
        raise InvalidMessage("invalid_from", field, "must be a non-empty string")
    return sender


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text:
        raise InvalidMessage("invalid_text", "text", "must be a non-empty string")
    encoding, units = text_units(text)
    limit = GSM_MAX_UNITS if encoding == "gsm" else UCS2_MAX_UNITS
    if units >= limit:
        raise InvalidMessage(
            "invalid_text", "text", f"is {units} {encoding.upper()} units long; it must be under {limit}"
        )
    return text


def check_callback(callback: object) -> str | None:
    if callback is None:
        return None
    if not isinstance(callback, str):
        raise InvalidMessage("invalid_callback", "callback", "must be a string URL")
    try:
        parts = urlsplit(callback)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host or any(c.isspace() for c in callback):
        raise InvalidMessage("invalid_callback", "callback", "must be an absolute http(s) URL with a host")
    return callback


def encode_body(body: Mapping[str, object]) -> bytes:
    """A request body as we send it and COSMOS measures it: compact JSON, UTF-8, unescaped."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def body_size(body: Mapping[str, object]) -> int:
    return len(encode_body(body))


def check_size(body: Mapping[str, object], allowance: int = 0) -> None:
    size = body_size(body) + allowance
    if size > MAX_BODY_BYTES:
        raise InvalidMessage("large_request", "body", f"is {size} bytes; COSMOS takes at most {MAX_BODY_BYTES}")


def validate_message(to: object, sender: object, text: object, callback: object = None) -> None:
    """Apply every rule to one message as a producer sees it (credentials not yet added)."""
    check_to(to)
    check_from(sender)
    check_text(text)
    check_callback(callback)
    body = {"to": to, "from": sender, "text": text}
    if callback is not None:
        body["callback"] = callback
    check_size(body, CREDENTIALS_ALLOWANCE_BYTES)
