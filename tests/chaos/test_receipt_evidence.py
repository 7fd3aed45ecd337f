"""Receipts against real processes: a receipt stored mid-send stops a resend; the provider's late word wins."""

from __future__ import annotations

import time

import requests

from cosmos_api.callback_token import callback_url
from tests.chaos.conftest import settle
from tests.support.polling import wait_for
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET

TO = "033334445566770"


def post_receipt(receiver, job_id: str, message_id: str, status: str = "delivered") -> requests.Response:
    body = {
        "status": status,
        "to": TO,
        "message_id": message_id,
        "price": 0.05,
        "message_timestamp": "2026-12-01 10:00:00",
    }
    return requests.post(
        callback_url(receiver.url, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600), json=body, timeout=5
    )


def test_a_receipt_that_lands_while_sending_stops_the_resend_after_the_worker_dies(
    producer, workers, sandbox, receiver, receipt_env, chaos_env
):
    sandbox.script(TO, "stall 60")  # the request hangs on the wire: the job stays `sending`
    env = {**chaos_env, **receipt_env, "COSMOS_READ_TIMEOUT_S": "5", "COSMOS_BURST_ATTEMPTS": "1"}
    victim = workers.start(concurrency=2, **env)
    job_id = producer.send_sms(TO, "F", "receipt first")
    wait_for(
        lambda: producer.get_status(job_id)["state"] == "sending" and sandbox.stats()["requests"] == 1,
        timeout=20,
        what="the request to be on the wire",
    )

    answer = post_receipt(receiver, job_id, "cosmos-42")  # COSMOS took it after all, and said so
    assert answer.status_code == 200, answer.text
    victim.kill()
    workers.start(concurrency=2, **env)

    [state] = settle(producer, [job_id], timeout=90)
    # Settled by a stored receipt (ours, or the sandbox's own for the stalled request it did accept)...
    assert state == "delivered" and producer.get_status(job_id)["attempts"] == 1
    assert sandbox.stats()["requests"] == 1  # ...and no second request after the lease expired


def test_a_late_acceptance_turns_an_expired_job_sent_and_requeue_refuses_it(
    producer, workers, sandbox, receiver, receipt_env, chaos_env
):
    job_id = producer.send_sms(TO, "F", "too late", expires_in=1)
    # Its deadline passed, after an attempt whose outcome was unknown (the evidence a late receipt needs).
    producer.ledger.redis.hset(producer.keys.job(job_id), mapping={"expires_ts": 1, "doubt": 1})
    workers.start(concurrency=2, **receipt_env, **chaos_env)
    wait_for(lambda: producer.get_status(job_id)["state"] == "expired", timeout=30, what="the job to expire")

    answer = post_receipt(receiver, job_id, "cosmos-late")
    assert answer.status_code == 200, answer.text

    record = producer.get_status(job_id)
    assert (record["state"], record["late"], record["message_id"]) == ("delivered", True, "cosmos-late")
    assert producer.ledger.operate("requeue", job_id)[0] is False
    assert sandbox.stats()["requests"] == 0
