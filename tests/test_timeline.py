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


def timeline_of(ledger, job_id: str) -> list[dict]:
    record = ledger.get(job_id)
    assert record is not None
    return record["timeline"]


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

    timeline = timeline_of(ledger, job_id)
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
    timeline = timeline_of(ledger, job_id)
    assert len(timeline) == TIMELINE_HEAD + 1 + TIMELINE_TAIL
    assert timeline[0]["event"] == "queued"
    omitted = timeline[TIMELINE_HEAD]
    assert omitted["event"] == "omitted"
    assert omitted["count"] == 1 + waits - TIMELINE_HEAD - TIMELINE_TAIL
    assert all(e["event"] == "waiting" for e in timeline[TIMELINE_HEAD + 1 :])


def test_a_timeline_entry_stays_under_the_listpack_value_limit(producer, ledger):
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    ledger.begin(job_id, "w1", count_delivery=True)
    error = "connection_refused: api.example:443 (COSMOS_API_URL=https://api.example/v1.0) " * 3
    ledger.finish(job_id, "w1", "transient", status="connection_refused", http=0, latency_ms=3, error=error)
    [attempt] = [e for e in timeline_of(ledger, job_id) if e["event"] == "attempt"]
    assert attempt["status"] == "connection_refused" and "http" not in attempt  # the error is cut to fit
    stored = ledger.redis.hgetall(ledger.keys.job(job_id))
    assert all(len(v.encode()) <= 63 for k, v in stored.items() if k.startswith("~"))


def deliver_all(ledger, producer, numbers: list[str]) -> list[str]:
    """Send, accept and deliver one record per number, as the workers and the receiver would."""
    ids = producer.send_bulk(
        [{"to": to, "sender": "Company Name 123", "text": "Your code is 123456"} for to in numbers]
    )
    for lane in ("single", "bulk"):  # Celery's messages are consumed in real life: not the record's cost
        ledger.redis.delete(ledger.keys.broker_queue_key(lane))
    for start in range(0, len(ids), 250):
        step = ids[start : start + 250]
        assert {a.verdict for a in ledger.begin_many(step, ["w1"] * len(step), count_delivery=True)} == {"go"}
        ledger.finish_many(
            [
                ledger.finish_args(
                    job_id,
                    "w1",
                    "accepted",
                    status="success",
                    http=200,
                    latency_ms=40,
                    message_id=f"m{job_id}",
                    price=0.05,
                )
                for job_id in step
            ]
        )
    for to, job_id in zip(numbers, ids):
        ledger.apply_receipt(job_id, to=to, status="delivered", message_id=f"m{job_id}", price=0.05, timestamp="t")
    return ids


def test_a_delivered_record_costs_at_most_1_5_kb_of_redis_with_its_timeline_and_every_index(settings_for):
    # The events stream holds COSMOS_EVENTS_MAXLEN entries whatever the traffic: one per record here,
    # as in the 1M campaign with the default bound.
    count = 2000
    producer = SmsProducer(settings_for(COSMOS_EVENTS_MAXLEN=str(count + 1)))
    ledger = producer.ledger
    # One record first: the scripts it loads into Redis are a fixed cost, not the records' (whether an
    # earlier test loaded them must not move the figure).
    deliver_all(ledger, producer, ["033334445599999"])
    before = int(ledger.redis.info("memory")["used_memory"])
    ids = deliver_all(ledger, producer, [f"0333344455{i:05d}" for i in range(count)])
    per_record = (int(ledger.redis.info("memory")["used_memory"]) - before) / count
    print(f"Redis bytes per delivered record, timeline and every index included: {per_record:.0f}")
    assert len(timeline_of(ledger, ids[-1])) == 5
    assert ledger.redis.object("encoding", ledger.keys.job(ids[-1])) == "listpack"
    assert per_record <= 1536
