"""The SMPP route piece by piece: text encodings byte-exact, PDUs, receipts, ids, kept receipts in the ledger."""

from __future__ import annotations

import pytest

from cosmos_api.smpp import pdu as P
from cosmos_api.smpp.answers import from_status, normalise_id, parse_status_map
from cosmos_api.smpp.gsm import decode_gsm, encode_text
from cosmos_api.smpp.receipts import Inbound, Receipt, read_deliver_sm
from sandbox.smsc import decode_gsm as simulator_decode_gsm

STATUS_MAP = parse_status_map("0x400=failed,0x401=spam,0x402=blacklist")


@pytest.mark.parametrize(
    ("text", "data_coding", "octets"),
    [
        ("Hello @£$", 0, b"Hello \x00\x01\x02"),
        # Every extension character as ESC and its code, in 3GPP TS 23.038's order.
        ("^{}\\[~]|€\f", 0, bytes.fromhex("1b14 1b28 1b29 1b2f 1b3c 1b3d 1b3e 1b40 1b65 1b0a".replace(" ", ""))),
        ("§¿¡ÄÖÑÜäöñüà", 0, bytes.fromhex("5f 60 40 5b 5c 5d 5e 7b 7c 7d 7e 7f".replace(" ", ""))),
        ("Привет", 8, "Привет".encode("utf-16-be")),
        ("ok 😀", 8, bytes.fromhex("006f 006b 0020 d83d de00".replace(" ", ""))),
        ("`", 8, b"\x00`"),  # a backtick is not GSM: UCS-2
    ],
)
def test_texts_encode_byte_exact(text, data_coding, octets):
    assert encode_text(text) == (data_coding, octets)
    if data_coding == 0:
        assert decode_gsm(octets) == text
        assert simulator_decode_gsm(octets) == text  # the simulator's table agrees, § included


def test_latin1_default_alphabet_sends_latin1_octets():
    assert encode_text("café", "latin1") == (0, "café".encode("latin-1"))


def test_submit_sm_carries_the_contract_fields():
    frame = P.submit_sm(7, "044770090012345", "Acme", 0, b"hi")
    assert frame[4:16] == bytes.fromhex("00000004 00000000 00000007".replace(" ", ""))
    body = frame[16:]
    assert body.startswith(b"\x00\x05\x00Acme\x00\x01\x01044770090012345\x00")
    assert body.endswith(b"\x01\x00\x00\x00\x02hi")  # registered_delivery 1, data_coding 0, length 2
    assert P.submit_sm(1, "0447", "4477", 0, b"")[17:19] == b"\x01\x01"  # a numeric sender: TON 1 / NPI 1


def test_a_receipt_is_read_from_its_tlv_before_its_text():
    body = (
        b"\x00\x01\x01044770090012345\x00\x05\x00COSMOS\x00"
        + b"\x04\x00\x00\x00\x00\x00\x00\x00\x00"
        + bytes([len(b"id:999 stat:UNDELIV")])
        + b"id:999 stat:UNDELIV"
        + b"\x00\x1e\x00\x04ABC\x00"
        + b"\x14\x00\x00\x01\x07"  # an unknown TLV: skipped
    )
    pdu = P.decode(P.encode(P.DELIVER_SM, 3, body))
    assert read_deliver_sm(pdu) == Receipt("ABC", "UNDELIV", "")
    assert Receipt("ABC", "UNDELIV", "").status == "not_delivered"
    assert Receipt("ABC", "ENROUTE", "").status is None


def test_an_inbound_message_is_decoded():
    body = b"\x00\x01\x01044770090012345\x00\x05\x00COSMOS\x00" + bytes(9) + b"\x04STOP"
    assert read_deliver_sm(P.decode(P.encode(P.DELIVER_SM, 3, body))) == Inbound("044770090012345", "COSMOS", "STOP")


def test_ids_are_normalised_in_one_place():
    assert normalise_id("000ABC") == "abc"
    assert normalise_id("255", "hex-dec", from_receipt=True) == "ff"
    assert normalise_id("FF", "dec-hex", from_receipt=True) == "255"
    assert normalise_id("00ff", "hex-dec") == "ff"


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (0x0B, "permanent", "invalid_to"),
        (0x49, "permanent", "invalid_from"),
        (0x01, "permanent", "invalid_text"),
        (0x401, "permanent", "spam"),
        (0x08, "transient", "internal_error"),
        (0x04, "transient", "not_bound"),
        (0x58, "release", "throttled"),
        (0x14, "release", "throttled"),
        (0x45, "permanent", "smpp_0x45"),
    ],
)
def test_command_status_maps_per_the_contract(code, kind, status):
    outcome = from_status(code, "", 5, STATUS_MAP)
    assert (outcome.kind, outcome.status, outcome.route) == (kind, status, "smpp")


def test_a_bad_status_map_names_the_entry():
    with pytest.raises(ValueError, match="0x400=nope"):
        parse_status_map("0x400=nope")


def test_a_receipt_naming_no_job_is_kept_ten_minutes_then_counted_unmatched(settings_for, redis_client):
    from ledger.store import SMPP_KEEP_S, Ledger

    ledger = Ledger(redis_client, settings_for())
    assert ledger.match_smpp_receipt("abc123", "delivered", "2026-12-08T00:00:00Z") is None
    assert ledger.match_smpp_receipt("abc123", "delivered", "2026-12-08T00:00:00Z") is None  # a repeat: kept once
    assert ledger.smpp_receipts_kept() == 1
    assert ledger.due_smpp_receipts() == []  # no job for it yet: kept
    later = Ledger(redis_client, settings_for(COSMOS_TESTING="1", COSMOS_TEST_CLOCK_OFFSET_S=str(SMPP_KEEP_S + 5)))
    assert later.due_smpp_receipts() == []
    assert later.smpp_receipts_kept() == 0
    counters = later.counters()
    assert (int(counters["smpp_receipts_kept"]), int(counters["smpp_receipts_unmatched"])) == (1, 1)
