"""Receipts are evidence only where a send may have gone out unseen; their price and token are bounded.

A real receiver process on the test's Redis; jobs end through a real worker and sandbox, or through
the ledger calls a worker makes where the test must stop a job mid-send.
"""

from __future__ import annotations

import time

import requests

from cosmos_api.callback_token import PARAM_EXP, callback_url
from ledger.stats import stats
from tests.support.polling import wait_for
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET

TO = "033334445566770"
REFUSED_TO = "099900000000001"  # the sandbox's magic number COSMOS refuses for good (`failed`)
OWNER = "test-owner"


def post(receiver, job_id: str, message_id: str, *, to: str = TO, price: float = 0.0, expires_in: float = 3600):
    url = callback_url(receiver.url, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + expires_in)
    body = {"status": "delivered", "to": to, "message_id": message_id, "price": price}
    return requests.post(url, json={**body, "message_timestamp": "2026-01-02 03:04:05"}, timeout=30)


def sent_job(producer, message_id: str, price: float) -> str:
    job_id = producer.send_sms(to=TO, sender="F", text="receipt me")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    assert producer.ledger.finish(job_id, OWNER, "accepted", message_id=message_id, price=price)[0] == "sent"
    return job_id


def test_a_receipt_does_not_turn_a_job_refused_for_good_into_delivered(producer, workers, sandbox, receiver):
    workers.start()
    job_id = producer.send_sms(to=REFUSED_TO, sender="F", text="refused")
    wait_for(lambda: producer.get_status(job_id)["state"] == "dead", timeout=30, what="the job to die")

    answer = post(receiver, job_id, "M-forged", to=REFUSED_TO, price=50.0)

    assert (answer.status_code, answer.json()["error"]) == (409, "refused_foreign")
    record = producer.get_status(job_id)
    assert (record["state"], record["dead_reason"], record["message_id"]) == ("dead", "failed", None)
    assert stats(producer.ledger)["late"] == 0


def test_a_receipt_does_not_turn_a_cancelled_job_into_delivered(producer, receiver):
    job_id = producer.send_sms(to=TO, sender="F", text="never sent")
    assert producer.cancel(job_id)

    answer = post(receiver, job_id, "M-forged")

    assert (answer.status_code, answer.json()["error"]) == (409, "refused_foreign")
    assert producer.get_status(job_id)["state"] == "cancelled"


def test_a_receipt_while_sending_does_not_make_the_real_acceptance_an_extra_send(producer, receiver):
    job_id = producer.send_sms(to=TO, sender="F", text="in flight")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"

    assert post(receiver, job_id, "M-forged").json() == {"result": "pending"}
    assert producer.ledger.finish(job_id, OWNER, "accepted", message_id="M-real", price=0.01)[0] == "sent"

    record = producer.get_status(job_id)
    assert (record["state"], record["message_id"], record["extra_sends"]) == ("sent", "M-real", 0)
    assert stats(producer.ledger)["extra_sends"] == 0
    assert post(receiver, job_id, "M-real").json() == {"result": "applied"}


def test_a_receipt_while_sending_does_not_settle_an_attempt_cosmos_refused(producer, receiver):
    job_id = producer.send_sms(to=TO, sender="F", text="refused in flight")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"

    assert post(receiver, job_id, "M-forged").json() == {"result": "pending"}
    assert producer.ledger.finish(job_id, OWNER, "permanent", status="failed", http=400)[0] == "dead"

    assert producer.get_status(job_id)["state"] == "dead"


def test_a_receipt_price_outside_its_bound_applies_without_it_and_is_counted(producer, receiver):
    cheap = sent_job(producer, "M-cheap", price=0.01)
    dear = sent_job(producer, "M-dear", price=0.5)

    assert post(receiver, cheap, "M-cheap", price=1.01).json() == {"result": "applied"}  # above max(1.00, 0.10)
    assert post(receiver, dear, "M-dear", price=4.9).json() == {"result": "applied"}  # within 10 x 0.50

    assert (producer.get_status(cheap)["price"], producer.get_status(dear)["price"]) == (0.01, 4.9)
    figures = stats(producer.ledger)
    assert figures["receipt_price_refused"] == 1
    assert abs(figures["total_price"] - 4.91) < 1e-9


def test_an_expired_callback_token_is_refused(producer, receiver):
    job_id = sent_job(producer, "M-1", price=0.01)

    expired = post(receiver, job_id, "M-1", expires_in=-1)
    url = callback_url(receiver.url, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600)
    no_expiry = requests.post(url.replace(f"&{PARAM_EXP}=", "&x="), json={"status": "delivered", "to": TO}, timeout=30)

    assert (expired.status_code, expired.json()["error"]) == (401, "invalid_token")
    assert (no_expiry.status_code, no_expiry.json()["error"]) == (401, "invalid_token")
    assert producer.get_status(job_id)["state"] == "sent"
