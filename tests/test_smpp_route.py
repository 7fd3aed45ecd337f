"""The SMPP route end to end: real workers, real Redis, the sandbox's SMSC in its own process.

One SMSC and one fleet per module; each test uses numbers of its own and resets the SMSC's faults.
"""

from __future__ import annotations

import pytest

from tests.support.polling import wait_for
from tests.support.smsc_fixture import SmscHandle, smpp_env, smpp_fleet, smpp_producer, smsc  # noqa: F401


@pytest.fixture(scope="module")
def fleet(smpp_fleet):
    smpp_fleet.start(concurrency=8)
    return smpp_fleet


@pytest.fixture
def smsc_fresh(smsc: SmscHandle) -> SmscHandle:
    smsc.faults(latency_ms=0, throttle_rate=0, bind_cap=0, receipt_before_response=False, receipts=True)
    return smsc


def final(producer, job_id: str, states=("delivered", "not_delivered", "dead", "held", "expired")) -> dict:
    return wait_for(
        lambda: (r := producer.get_status(job_id)) and r["state"] in states and r,
        timeout=30,
        what=f"{job_id} to reach one of {states}",
    )


def test_a_message_goes_as_one_submit_sm_and_its_receipt_delivers_it(fleet, smsc_fresh, smpp_producer):
    job = smpp_producer.send_sms("044770090010101", "Acme", "hello over SMPP")
    record = final(smpp_producer, job)
    assert record["state"] == "delivered"
    assert record["route"] == "smpp"
    assert record["history"][-1]["route"] == "smpp"
    assert record["history"][-1]["provider_status"] == "0x0"
    [sent] = smsc_fresh.messages("044770090010101")
    assert sent["from"] == "Acme" and (sent["source_ton"], sent["source_npi"]) == (5, 0)
    assert sent["registered_delivery"] == 1
    assert record["message_id"] == sent["message_id"].lower().lstrip("0")
