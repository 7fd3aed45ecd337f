"""SMPP answers (command_status, timeouts, lost connections) to the route-agnostic `Outcome`."""

from __future__ import annotations

from cosmos_api.outcomes import PERMANENT_STATUSES, Outcome

ROUTE = "smpp"
ESME_ROK = 0x00
ESME_RALYBND = 0x05
BIND_REFUSALS = frozenset({0x0D, 0x0E, 0x0F})
"""ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RINVSYSID: about the account, like an HTTP 401."""
THROTTLED = frozenset({0x58, 0x14})
"""ESME_RTHROTTLED, ESME_RMSGQFUL: slow the route down; not one of the message's attempts."""
THROTTLE_PAUSE_S = 1.0
"""How long a throttled route holds new submits, and when the throttled message is due again."""
FIXED = {
    0x0B: ("permanent", "invalid_to"),
    0x50: ("permanent", "invalid_to"),
    0x51: ("permanent", "invalid_to"),
    0x0A: ("permanent", "invalid_from"),
    0x48: ("permanent", "invalid_from"),
    0x49: ("permanent", "invalid_from"),
    0x01: ("permanent", "invalid_text"),
    0x08: ("transient", "internal_error"),
    0x64: ("transient", "timeout"),
    0x04: ("transient", "not_bound"),
}


def hex_status(code: int) -> str:
    return f"0x{code:x}"


def parse_status_map(text: str) -> dict[int, str]:
    """`0x400=failed,0x401=spam` to {0x400: 'failed', ...}; ValueError naming the bad entry."""
    out: dict[int, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        code, _, name = entry.partition("=")
        try:
            value = int(code.strip(), 0)
        except ValueError:
            raise ValueError(f"{entry!r}: the code must be a number such as 0x400") from None
        if name.strip() not in PERMANENT_STATUSES:
            raise ValueError(
                f"{entry!r}: {name.strip()!r} is not a COSMOS status ({', '.join(sorted(PERMANENT_STATUSES))})"
            )
        out[value] = name.strip()
    return out


def from_status(code: int, message_id: str, latency_ms: int, status_map: dict[int, str]) -> Outcome:
    """A submit_sm_resp's command_status (and message_id) to an outcome."""
    raw = hex_status(code)
    if code == ESME_ROK and message_id:
        return Outcome("accepted", "ok", 0, latency_ms, message_id, route=ROUTE, provider_status=raw)
    if code == ESME_ROK:
        return ambiguous("no_message_id", latency_ms, "submit_sm_resp ESME_ROK without a message_id", raw)
    if code in THROTTLED:
        return Outcome(
            "release",
            "throttled",
            0,
            latency_ms,
            route=ROUTE,
            provider_status=raw,
            error=f"SMSC throttled ({raw})",
            retry_after_s=THROTTLE_PAUSE_S,
        )
    if code in status_map:
        kind, status = "permanent", status_map[code]
    elif code in FIXED:
        kind, status = FIXED[code]
    elif code in BIND_REFUSALS:
        kind, status = "permanent", "unauthorized"
    else:
        kind, status = "permanent", f"smpp_{raw}"
    return Outcome(kind, status, 0, latency_ms, route=ROUTE, provider_status=raw, error=f"SMSC answered {raw}")


def ambiguous(status: str, latency_ms: int, error: str, raw: str = "") -> Outcome:
    """The SMSC may have taken the message: no response in time, the connection lost with it in flight."""
    return Outcome("ambiguous", status, 0, latency_ms, route=ROUTE, provider_status=raw, error=error)


def not_sent(status: str, error: str, raw: str = "", retry_after_s: float = 0.0) -> Outcome:
    """Certainly not taken (a generic_nack with our sequence, no session to send on)."""
    kind = "release" if retry_after_s else "transient"
    return Outcome(kind, status, 0, 0, route=ROUTE, provider_status=raw, error=error, retry_after_s=retry_after_s)


def refused_bind(code: int) -> Outcome:
    """The SMSC refused our credentials: every message's problem, so it pauses like an HTTP 401."""
    raw = hex_status(code)
    return Outcome("permanent", "unauthorized", 0, 0, route=ROUTE, provider_status=raw, error=f"bind refused ({raw})")


def normalise_id(message_id: str, form: str = "as-is", *, from_receipt: bool = False) -> str:
    """One form for both the submit_sm_resp id and a receipt's: case and leading zeros ignored, and a
    receipt's id converted to the response's base (`hex-dec`: hex in responses, decimal in receipts)."""
    text = message_id.strip().lower()
    try:
        if from_receipt and form == "hex-dec":
            return format(int(text, 10), "x")
        if from_receipt and form == "dec-hex":
            return str(int(text, 16))
    except ValueError:
        pass
    return text.lstrip("0") or ("0" if text else "")
