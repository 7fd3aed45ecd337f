"""Text to `short_message` octets: GSM 03.38 unpacked (data_coding 0) or UCS-2 big-endian (8).

The table is written out here, character by character, from 3GPP TS 23.038; the simulator uses
its own (smpplib's, corrected), so a slip in one shows up against the other.
"""

from __future__ import annotations

# Position = septet value. 0x1B is the escape to the extension table.
GSM_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_EXTENSION_TABLE = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESC = 0x1B
DATA_CODING_DEFAULT = 0
DATA_CODING_LATIN1 = 3
DATA_CODING_UCS2 = 8

_BASIC = {ch: i for i, ch in enumerate(GSM_BASIC_TABLE) if i != ESC}
_BASIC_BACK = {i: ch for ch, i in _BASIC.items()}
_EXT_BACK = {code: ch for ch, code in GSM_EXTENSION_TABLE.items()}


def fits_gsm(text: str) -> bool:
    return all(ch in _BASIC or ch in GSM_EXTENSION_TABLE for ch in text)


def encode_gsm(text: str) -> bytes:
    """Unpacked GSM 03.38: one septet per octet, an extension character as ESC and its code."""
    out = bytearray()
    for ch in text:
        if ch in _BASIC:
            out.append(_BASIC[ch])
        else:
            out += bytes((ESC, GSM_EXTENSION_TABLE[ch]))  # KeyError: not GSM (callers check fits_gsm)
    return bytes(out)


def decode_gsm(data: bytes) -> str:
    out = []
    escaped = False
    for octet in data:
        if escaped:
            out.append(_EXT_BACK.get(octet, " "))
            escaped = False
        elif octet == ESC:
            escaped = True
        else:
            out.append(_BASIC_BACK.get(octet & 0x7F, "?"))
    return "".join(out)


def encode_text(text: str, default_alphabet: str = "gsm") -> tuple[int, bytes]:
    """(data_coding, short_message) for a text: the default alphabet when it fits, else UCS-2."""
    if default_alphabet == "gsm" and fits_gsm(text):
        return DATA_CODING_DEFAULT, encode_gsm(text)
    if default_alphabet == "latin1" and fits_gsm(text):
        try:
            return DATA_CODING_DEFAULT, text.encode("latin-1")
        except UnicodeEncodeError:
            pass
    return DATA_CODING_UCS2, text.encode("utf-16-be")


def decode_text(data_coding: int, data: bytes, default_alphabet: str = "gsm") -> str:
    """The text of a received short_message (inbound messages, receipts)."""
    if data_coding == DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == DATA_CODING_LATIN1 or (data_coding == DATA_CODING_DEFAULT and default_alphabet == "latin1"):
        return data.decode("latin-1")
    if data_coding == DATA_CODING_DEFAULT:
        return decode_gsm(data)
    return data.decode("ascii", errors="replace")  # IA5 and the rest: receipts are ASCII
