"""What a deliver_sm says: a delivery receipt (message id and final state) or an inbound message."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cosmos_api.smpp import pdu as P
from cosmos_api.smpp.gsm import decode_text

FINAL_STATS = {
    "DELIVRD": "delivered",
    "UNDELIV": "not_delivered",
    "REJECTD": "not_delivered",
    "EXPIRED": "not_delivered",
    "DELETED": "not_delivered",
}
"""Receipt `stat:` values that end a message; ACCEPTD, ENROUTE, SCHEDLD, UNKNOWN are noted only."""
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
"""The message_state TLV's values, as the text's `stat:` names them."""

_ID = re.compile(rb"\bid:(\S+)", re.IGNORECASE)
_STAT = re.compile(rb"\bstat:(\w+)", re.IGNORECASE)
_DONE = re.compile(rb"\bdone date:(\d{10,12})", re.IGNORECASE)


@dataclass(frozen=True)
class Receipt:
    message_id: str
    stat: str
    done: str

    @property
    def status(self) -> str | None:
        """delivered | not_delivered, or None for a state that changes nothing."""
        return FINAL_STATS.get(self.stat)


@dataclass(frozen=True)
class Inbound:
    sender: str
    to: str
    text: str


def read_deliver_sm(pdu: P.Pdu, default_alphabet: str = "gsm") -> Receipt | Inbound:
    f = pdu.fields
    raw = f.get("message", b"")
    message = raw if isinstance(raw, bytes) else b""
    tlvs: dict[int, bytes] = f.get("tlvs", {})  # type: ignore[assignment]
    if int(f.get("esm_class", 0)) & P.ESM_CLASS_RECEIPT:  # type: ignore[call-overload]
        found = _ID.search(message)
        mid = tlvs[P.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\0") if P.TLV_RECEIPTED_MESSAGE_ID in tlvs else b""
        mid = mid or (found.group(1) if found else b"")
        stat_match = _STAT.search(message)
        stat = stat_match.group(1).decode().upper() if stat_match else ""
        if not stat and P.TLV_MESSAGE_STATE in tlvs and tlvs[P.TLV_MESSAGE_STATE]:
            stat = MESSAGE_STATES.get(tlvs[P.TLV_MESSAGE_STATE][0], "UNKNOWN")
        done = _DONE.search(message)
        return Receipt(mid.decode("latin-1"), stat, done.group(1).decode() if done else "")
    text = decode_text(int(f.get("data_coding", 0)), message, default_alphabet)  # type: ignore[call-overload]
    return Inbound(str(f.get("source", "")), str(f.get("destination", "")), text)
