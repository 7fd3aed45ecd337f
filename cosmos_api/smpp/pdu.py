"""SMPP 3.4 PDUs the route needs, as bytes and back: a small codec of our own.

Only these: bind_transceiver, submit_sm, deliver_sm, enquire_link, unbind, generic_nack and their
responses. Unknown optional parameters (TLVs) are skipped, as the specification asks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = struct.Struct(">IIII")
MAX_PDU_BYTES = 64 * 1024
"""A longer command_length is a corrupt stream, not a PDU."""
MAX_SEQUENCE = 0x7FFFFFFF

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015

ESM_CLASS_RECEIPT = 0x04
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423


class PduError(ValueError):
    """Bytes that are not a PDU we can read: the session is corrupt."""


@dataclass
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""
    fields: dict[str, object] = field(default_factory=dict)


def encode(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def cstring(value: str | bytes) -> bytes:
    raw = value.encode("latin-1", errors="replace") if isinstance(value, str) else value
    return raw.replace(b"\0", b"") + b"\0"


def bind_transceiver(sequence: int, system_id: str, password: str, system_type: str = "") -> bytes:
    body = cstring(system_id) + cstring(password) + cstring(system_type) + bytes((0x34, 0, 0)) + cstring("")
    return encode(BIND_TRANSCEIVER, sequence, body)


def source_ton_npi(sender: str) -> tuple[int, int]:
    """TON 5 / NPI 0 for an alphanumeric sender, TON 1 / NPI 1 for a number."""
    return (5, 0) if any(ch.isalpha() for ch in sender) else (1, 1)


def submit_sm(sequence: int, to: str, sender: str, data_coding: int, message: bytes) -> bytes:
    if len(message) > 254:
        raise ValueError("short_message over 254 octets")
    ton, npi = source_ton_npi(sender)
    body = (
        cstring("")  # service_type
        + bytes((ton, npi))
        + cstring(sender)
        + bytes((1, 1))  # dest TON/NPI: international, ISDN
        + cstring(to)
        + bytes((0, 0, 0))  # esm_class, protocol_id, priority_flag
        + cstring("")  # schedule_delivery_time
        + cstring("")  # validity_period
        + bytes((1, 0, data_coding, 0, len(message)))  # registered_delivery, replace, data_coding, default_msg_id
        + message
    )
    return encode(SUBMIT_SM, sequence, body)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PduError("unterminated C-Octet String")
        value = self.data[self.pos : end]
        self.pos = end + 1
        return value

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise PduError("PDU body too short")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError("PDU body too short")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        out = {}
        while self.pos + 4 <= len(self.data):
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            out[tag] = self.octets(length)
        return out


def decode(frame: bytes) -> Pdu:
    """One whole PDU (header included) to a `Pdu` whose `fields` hold what we read of its body."""
    if len(frame) < HEADER.size:
        raise PduError("shorter than a header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    body = frame[HEADER.size : length]
    pdu = Pdu(command_id, status, sequence, body)
    r = _Reader(body)
    if command_id in (SUBMIT_SM_RESP, BIND_TRANSCEIVER_RESP) and body:
        pdu.fields["id"] = r.cstring().decode("latin-1")
    elif command_id == DELIVER_SM:
        r.cstring()  # service_type
        r.octets(2)
        source = r.cstring().decode("latin-1")
        r.octets(2)
        destination = r.cstring().decode("latin-1")
        esm_class = r.byte()
        r.octets(2)
        r.cstring()
        r.cstring()
        r.octets(2)
        data_coding = r.byte()
        r.byte()
        message = r.octets(r.byte())
        tlvs = r.tlvs()
        pdu.fields.update(
            source=source,
            destination=destination,
            esm_class=esm_class,
            data_coding=data_coding,
            message=message,
            tlvs=tlvs,
        )
    return pdu
