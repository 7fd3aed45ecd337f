"""What every dead reason and state means, whether a requeue can help, and what to do: the one table
the console, `cosmos-sms status` and `cosmos-sms dead list` show beside them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SMPP_REASON = re.compile(r"^smpp_0x[0-9a-f]{1,8}$")
"""A vendor's SMPP command_status no status map names, as a dead reason."""


@dataclass(frozen=True)
class Explanation:
    """`means`: what COSMOS (or the ledger) says by it; `requeue`: whether sending it again can help."""

    means: str
    requeue: str
    todo: str

    def line(self) -> str:
        return f"{self.means} Requeue: {self.requeue}. {self.todo}"


_NO = "no, unless something changes"
_FIX = "yes, after the fix"

DEAD_REASONS: dict[str, Explanation] = {
    "failed": Explanation(
        "COSMOS: the number does not exist or its owner set it inactive.",
        _NO,
        "Check the number with its owner; requeue only once it is active again.",
    ),
    "spam": Explanation(
        "COSMOS blocked the message under its spam rules.",
        _NO,
        "Change the text or sender, or ask COSMOS support why it was blocked; requeueing the same message fails again.",
    ),
    "blacklist": Explanation(
        "COSMOS: the recipient opted out (sent STOP); the number is now on the suppression list.",
        _NO,
        "Do not send to it; only if the recipient opts back in, remove it from the suppression list first.",
    ),
    "invalid_to": Explanation(
        "COSMOS refused the number's format.", _NO, "Send a corrected message; the producer checks the same rule."
    ),
    "invalid_from": Explanation("COSMOS refused the sender name.", _NO, "Send again with a sender COSMOS accepts."),
    "invalid_text": Explanation(
        "COSMOS refused the text (wrong or too long).", _NO, "Shorten or correct the text and send a new message."
    ),
    "invalid_callback": Explanation(
        "COSMOS refused the callback URL.", _NO, "Fix the callback URL (or COSMOS_WEBHOOK_URL) and send again."
    ),
    "invalid_json": Explanation(
        "COSMOS could not read the request.", _FIX, "A defect on our side: report it with the job id."
    ),
    "large_request": Explanation(
        "The request body is over 4096 bytes; it was not sent.", _NO, "Shorten the text or callback and send anew."
    ),
    "unauthorized": Explanation(
        "COSMOS refused the account's credentials.",
        _FIX,
        "Fix COSMOS_API_KEY / COSMOS_API_SECRET on the workers, then requeue.",
    ),
    "suppressed": Explanation(
        "The number is on the suppression list (an earlier blacklist, an opt-out or an operator); not sent.",
        "only after `suppression remove`",
        "Keep it unless the recipient asked to receive messages again.",
    ),
    "retries_exhausted": Explanation(
        "Every allowed attempt (COSMOS_MAX_ATTEMPTS) failed transiently: timeouts, 5xx, refused connections.",
        "yes, once COSMOS answers again",
        "Check last_error and the timeline; requeue gives a fresh attempt budget and deadline.",
    ),
    "poison": Explanation(
        "Its deliveries kept ending without an outcome (a worker crashed on it COSMOS_POISON_DELIVERIES times).",
        _FIX,
        "Look at the worker logs for the crash with this job id; requeue once fixed.",
    ),
    "held_limit": Explanation(
        "Too many attempts with an unknown outcome (COSMOS_MAX_AMBIGUOUS_RESENDS): another send might duplicate it.",
        "yes, but it may arrive twice",
        "Ask COSMOS whether it went out; requeue only if it did not.",
    ),
}
"""COSMOS's permanent statuses and the ledger's own reasons; an SMPP `smpp_0x..` code is explained by `dead_reason`."""

STATES: dict[str, str] = {
    "queued": "Recorded and published; no worker has taken it yet.",
    "sending": "A worker holds its lease and is talking to COSMOS.",
    "retrying": "Waiting after a transient failure, or for a pause, the breaker, a rate slot, a budget or its time.",
    "sent": "COSMOS accepted it (message_id); waiting for the delivery receipt.",
    "delivered": "The receipt says it reached the phone. Final.",
    "not_delivered": "The receipt says it could not be delivered; COSMOS support can say why. Final.",
    "dead": "It will not be sent; its dead reason says why and whether a requeue can help. Final.",
    "expired": "Its deadline passed before it could be sent. Final; send a new message if it still matters.",
    "held": "An attempt's outcome is unknown: check with COSMOS, then resend or mark it sent.",
    "cancelled": "Cancelled before it was sent. Final.",
}


def known_reason(reason: str) -> bool:
    """Whether the ledger can give this dead reason."""
    return reason in DEAD_REASONS or SMPP_REASON.match(reason) is not None


def dead_reason(reason: str | None) -> Explanation | None:
    """The explanation of a dead reason (an unknown one, e.g. a vendor's SMPP code, gets a generic one)."""
    if not reason:
        return None
    if reason in DEAD_REASONS:
        return DEAD_REASONS[reason]
    if SMPP_REASON.match(reason):
        return Explanation(
            f"The SMSC answered with the vendor status {reason[5:]}, which the status map does not name.",
            "ask COSMOS",
            "Ask COSMOS what the code means; map it with COSMOS_SMPP_STATUS_MAP.",
        )
    return Explanation("A permanent status from COSMOS.", _NO, "Ask COSMOS support what it means.")


def explain(record: dict[str, Any]) -> dict[str, str]:
    """The `explained` object of an outcome record: its state, and its dead reason when dead."""
    out = {"state": STATES.get(str(record.get("state")), "")}
    why = dead_reason(record.get("dead_reason"))
    if why is not None:
        out["dead_reason"] = why.line()
    return out


def explain_reason(reason: str | None) -> str:
    """One line for people: what the dead reason means, whether a requeue helps, what to do."""
    why = dead_reason(reason)
    return why.line() if why is not None else ""


def explain_state(state: str | None) -> str:
    return STATES.get(state or "", "")
