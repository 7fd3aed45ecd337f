"""The per-job timeline: every move, attempt, receipt, wait and operator action, kept with the job
(real Redis, the ledger's scripts called directly)."""

from __future__ import annotations

import pytest

from ledger.schema import TIMELINE_HEAD, TIMELINE_TAIL
from producers.producer import SmsProducer

TO = "033334445566770"


@pytest.fixture
def producer(settings_for, redis_client) -> SmsProducer:
    return SmsProducer(settings_for(COSMOS_MAX_ATTEMPTS="2", COSMOS_RETENTION_S="3600"))


@pytest.fixture
def ledger(producer):
    return producer.ledger


def events(record) -> list[str]:
    return [e["event"] for e in record["timeline"]]


def test_a_delivered_job_tells_its_story_in_order_with_times(producer, ledger):
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "transient", status="server_error", http=500, latency_ms=12, error="HTTP 500")
    ledger.finish(job_id, "w1", "defer", delay_s=0)
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "accepted", status="success", http=200, latency_ms=34, message_id="m-1", price=0.05)
    ledger.apply_receipt(job_id, to=TO, status="delivered", message_id="m-1", price=0.04, timestamp="t")

    record = ledger.get(job_id)
    assert events(record) == [
        "queued",
        "sending",
        "attempt",
        "retry_scheduled",
        "sending",
        "attempt",
        "sent",
        "receipt",
    ]
    first, accepted, receipt = record["timeline"][2], record["timeline"][5], record["timeline"][-1]
    assert (first["n"], first["status"], first["http"], first["ms"], first["route"]) == (
        1,
        "server_error",
        500,
        12,
        "http",
    )
    assert first["error"] == "HTTP 500"
    assert (accepted["n"], accepted["status"], accepted["http"], accepted["ms"]) == (2, "success", 200, 34)
    assert "error" not in accepted
    assert receipt["state"] == "delivered"
    stamps = [e["at"] for e in record["timeline"]]
    assert stamps == sorted(stamps) and all(s.endswith("Z") and "T" in s for s in stamps)
    assert stamps[0] == record["created_at"]
    assert len(record["history"]) == 2  # the attempt history stays as it was


def test_waits_and_operator_actions_name_why_and_who(producer, ledger):
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    ledger.redis.hset(ledger.keys.pause, "op:all", "{}")
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "wait"
    ledger.redis.delete(ledger.keys.pause)
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "permanent", status="spam", http=400, latency_ms=5, error="spam")
    assert ledger.operate("requeue", job_id, by="console:ana") == (True, "single")

    timeline = ledger.get(job_id)["timeline"]
    assert [e["event"] for e in timeline] == ["queued", "waiting", "sending", "attempt", "dead", "requeued"]
    waiting, dead, requeued = timeline[1], timeline[4], timeline[5]
    assert waiting["why"] == "operator_paused" and waiting["state"] == "retrying" and waiting["until"].endswith("Z")
    assert dead["reason"] == "spam"
    assert (requeued["by"], requeued["state"]) == ("console:ana", "queued")
    assert ledger.get(job_id)["attempts"] == 0  # a fresh budget, and the timeline keeps the first one


def test_a_long_story_keeps_its_first_and_last_entries_and_counts_the_rest(producer, ledger):
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    ledger.redis.hset(ledger.keys.pause, "op:all", "{}")
    waits = 100
    for _ in range(waits):
        ledger.begin(job_id, "w1", count_delivery=True)
    timeline = ledger.get(job_id)["timeline"]
    assert len(timeline) == TIMELINE_HEAD + 1 + TIMELINE_TAIL
    assert timeline[0]["event"] == "queued"
    omitted = timeline[TIMELINE_HEAD]
    assert omitted["event"] == "omitted"
    assert omitted["count"] == 1 + waits - TIMELINE_HEAD - TIMELINE_TAIL
    assert all(e["event"] == "waiting" for e in timeline[TIMELINE_HEAD + 1 :])


def test_the_timeline_leaves_with_its_record(producer, ledger):
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    ledger.begin(job_id, "w1", count_delivery=True)
    ledger.finish(job_id, "w1", "permanent", status="spam", http=400, latency_ms=5, error="spam")
    key = ledger.keys.timeline(job_id)
    assert 0 < ledger.redis.ttl(key) <= ledger.redis.ttl(ledger.keys.job(job_id))
    assert ledger.operate("purge", job_id) == (True, "single")
    assert not ledger.redis.exists(key)
