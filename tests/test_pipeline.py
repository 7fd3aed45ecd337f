"""The core pipeline end to end: real Redis, real Celery workers (in this process unless a test reads the
worker's log), the sandbox over HTTP."""

from __future__ import annotations

import pytest

from config.errors import IdempotencyConflict, InvalidMessage
from ledger.schema import ENQUEUE_STEP
from tests.conftest import TEST_API_KEY, TEST_API_SECRET
from tests.support.polling import wait_for

TO = "033334445566770"
FINAL = {"sent", "delivered", "not_delivered", "dead", "expired", "cancelled", "held"}


def final_record(producer, job_id, timeout=30):
    return wait_for(
        lambda: (r := producer.get_status(job_id)) and r["state"] in FINAL and r,
        timeout=timeout,
        what=f"job {job_id} to reach a final state",
    )


def test_queued_job_is_sent_with_the_spec_request(producer, workers, sandbox):
    workers.start()
    job_id = producer.send_sms(to=TO, sender="Company Name 123", text="Hello world!")
    assert producer.get_status(job_id)["state"] in {"queued", "sending", "sent"}

    record = final_record(producer, job_id)

    assert record["state"] == "sent"
    assert record["attempts"] == 1
    assert record["message_id"] and record["price"] == 0.0
    assert record["created_at"].endswith("Z")
    [message] = sandbox.messages(10)
    assert (message["to"], message["from"], message["text"]) == (TO, "Company Name 123", "Hello world!")
    assert message["callback"] is None
    [request] = sandbox.requests(10)
    assert request["auth_ok"] is True


def test_transient_outcomes_are_retried_until_sent(producer, workers, sandbox):
    sandbox.script(TO, "internal_error", "timeout", "ok")
    workers.start()
    job_id = producer.send_sms(to=TO, sender="F", text="retry me")

    record = final_record(producer, job_id)

    assert record["state"] == "sent"
    assert record["attempts"] == 3
    assert [h["status"] for h in record["history"]] == ["internal_error", "timeout", "ok"]
    assert sandbox.count(TO, "retry me") == 1


@pytest.mark.parametrize("status", ["failed", "spam", "blacklist", "invalid_text", "invalid_to"])
def test_permanent_status_dead_letters_with_that_reason(producer, workers, sandbox, status):
    sandbox.script(TO, status)
    workers.start()
    job_id = producer.send_sms(to=TO, sender="F", text="doomed")

    record = final_record(producer, job_id)

    assert (record["state"], record["dead_reason"], record["attempts"]) == ("dead", status, 1)
    assert job_id in {j for page in producer.ledger.dead_ids() for j in page}


def test_unauthorized_pauses_sending_and_a_probe_resumes_it(producer, workers, sandbox):
    # Not "unauthorized → dead": COSMOS refusing our credentials is true of
    # every message, so the job waits and one probe per interval finds out when they work again.
    sandbox.script(TO, "unauthorized", "unauthorized", "ok")
    workers.start(COSMOS_PAUSE_PROBE_INTERVAL_S="0.3")
    job_id = producer.send_sms(to=TO, sender="F", text="patience")

    record = final_record(producer, job_id)

    assert (record["state"], record["dead_reason"]) == ("sent", None)
    assert sandbox.count(TO, "patience") == 1
    assert producer.ledger.pause_state() == {}
    assert int(producer.ledger.counters()["unauthorized"]) == 2


def test_max_attempts_ends_retries_exhausted(settings_for, producer, workers, sandbox):
    sandbox.script(TO, *["internal_error"] * 10)
    workers.start(COSMOS_MAX_ATTEMPTS="4")
    job_id = producer.send_sms(to=TO, sender="F", text="never")

    record = final_record(producer, job_id)

    assert (record["state"], record["dead_reason"], record["attempts"]) == ("dead", "retries_exhausted", 4)
    assert sandbox.count(TO, "never") == 0


def test_expired_job_is_never_sent(producer, workers, sandbox):
    job_id = producer.send_sms(to=TO, sender="F", text="late", expires_in=1)
    wait_for(
        lambda: producer.redis.time()[0] >= float(producer.redis.hget(producer.keys.job(job_id), "expires_ts")),
        timeout=5,
        what="the deadline to pass",
    )
    workers.start()

    record = final_record(producer, job_id)

    assert record["state"] == "expired"
    assert sandbox.stats()["requests"] == 0


def test_ambiguous_attempt_under_hold_is_held_after_one_request(producer, workers, sandbox):
    sandbox.script(TO, "accept_drop")
    workers.start(COSMOS_AMBIGUOUS_POLICY="hold")
    job_id = producer.send_sms(to=TO, sender="F", text="maybe")

    record = final_record(producer, job_id)

    assert record["state"] == "held"
    assert sandbox.stats()["requests"] == 1


def test_blacklisted_number_is_suppressed_next_time(producer, workers, sandbox):
    sandbox.script(TO, "blacklist")
    workers.start()
    first = final_record(producer, producer.send_sms(to=TO, sender="F", text="one"))
    second = final_record(producer, producer.send_sms(to=TO, sender="F", text="two"))

    assert first["dead_reason"] == "blacklist"
    assert (second["state"], second["dead_reason"], second["attempts"]) == ("dead", "suppressed", 0)
    assert sandbox.stats()["requests"] == 1


def test_requeued_dead_job_is_sent_once(producer, workers, sandbox):
    sandbox.script(TO, "failed")
    workers.start()
    job_id = producer.send_sms(to=TO, sender="F", text="again")
    assert final_record(producer, job_id)["dead_reason"] == "failed"

    done, lane = producer.ledger.operate("requeue", job_id)
    assert done
    from ledger.outbox import republish

    republish(producer.redis, producer.keys, [(job_id, lane)])

    record = final_record(producer, job_id)
    assert record["state"] == "sent"
    assert sandbox.count(TO, "again") == 1


def test_same_idempotency_key_sends_once_and_a_different_message_conflicts(producer, workers, sandbox):
    workers.start()
    first = producer.send_sms(to=TO, sender="F", text="once", idempotency_key="order-42")
    second = producer.send_sms(to=TO, sender="F", text="once", idempotency_key="order-42")
    assert first == second
    with pytest.raises(IdempotencyConflict) as err:
        producer.send_sms(to=TO, sender="F", text="other", idempotency_key="order-42")
    assert err.value.job_id == first

    final_record(producer, first)
    assert sandbox.count(TO, "once") == 1


def test_cancel_before_sending_prevents_the_request(producer, workers, sandbox):
    job_id = producer.send_sms(to=TO, sender="F", text="cancel me")
    assert producer.cancel(job_id) is True
    workers.start()
    other = producer.send_sms(to=TO, sender="F", text="after")  # proves the worker ran

    final_record(producer, other)
    assert producer.get_status(job_id)["state"] == "cancelled"
    assert sandbox.count(TO, "cancel me") == 0
    assert producer.cancel(job_id) is False


def test_invalid_message_raises_and_enqueues_nothing(producer, redis_client, prefix):
    with pytest.raises(InvalidMessage) as err:
        producer.send_bulk([{"to": TO, "sender": "F", "text": "ok"}, {"to": "123", "sender": "F", "text": "x"}])
    assert (err.value.status, err.value.field, err.value.index) == ("invalid_to", "to", 1)
    assert list(redis_client.scan_iter(f"{prefix}:*")) == []


@pytest.mark.parametrize(
    "message, field",
    [
        ("not a dict", "message"),
        ({"to": TO, "sender": "F", "text": "x", "colour": "red"}, "colour"),
        ({"to": TO, "sender": "F", "text": "x", "expires_in": -1}, "expires_in"),
        ({"to": TO, "sender": "F", "text": "x", "expires_in": True}, "expires_in"),
        ({"to": TO, "sender": " ", "text": "x"}, "sender"),
        ({"to": TO, "sender": "F", "text": "x", "callback": "javascript:alert(1)"}, "callback"),
    ],
)
def test_hostile_bulk_member_is_refused_by_index_and_nothing_is_enqueued(
    producer, redis_client, prefix, message, field
):
    with pytest.raises(InvalidMessage) as err:
        producer.send_bulk([{"to": TO, "sender": "F", "text": "fine"}, message])
    assert (err.value.field, err.value.index) == (field, 1)
    assert list(redis_client.scan_iter(f"{prefix}:*")) == []


def test_bulk_is_delivered_and_uses_bounded_round_trips(producer, workers, sandbox, monkeypatch):
    workers.start()
    producer.send_bulk([{"to": TO, "sender": "F", "text": "warm-up"}])  # loads the script once
    calls = []
    execute = producer.redis.execute_command

    def counting_execute(*args, **kwargs):
        calls.append(args[0])
        return execute(*args, **kwargs)

    monkeypatch.setattr(producer.redis, "execute_command", counting_execute)
    job_ids = producer.send_bulk([{"to": TO, "sender": "F", "text": f"bulk {i}"} for i in range(1000)])

    assert len(set(job_ids)) == 1000
    # Bounded steps (ENQUEUE_STEP jobs, ~10 ms in Redis each) record all 1,000 jobs and their 20 chunk
    # messages (50 ids each): one script call per step, nothing else.
    assert calls == ["EVALSHA"] * -(-1000 // ENQUEUE_STEP)
    assert producer.redis.llen(producer.keys.broker_queue_key("bulk")) <= 1000 // 50
    wait_for(lambda: all(s == "sent" for s in producer.ledger.states(job_ids)), timeout=60, what="the bulk to be sent")
    assert sandbox.accepted()["total"] == 1001 and sandbox.accepted()["duplicates"] == 0


def test_a_single_lane_backlog_goes_in_groups_and_each_job_is_sent_once(producer, worker_processes, sandbox):
    job_ids = [producer.send_sms(to=TO, sender="F", text=f"code {i}") for i in range(300)]
    handle = worker_processes.start(lane="single", COSMOS_LOG_LEVEL="DEBUG")

    wait_for(
        lambda: all(s == "sent" for s in producer.ledger.states(job_ids)), timeout=60, what="the backlog to be sent"
    )
    assert sandbox.accepted()["total"] == 300 and sandbox.accepted()["duplicates"] == 0
    # Jobs waiting in the lane went beside the tasks that ran: fewer Celery tasks than jobs.
    assert "single jobs taken beside a task" in handle.log()
    assert handle.log().count("Task cosmos.deliver[") < 300


def test_api_secret_appears_in_no_redis_key_value_or_log(producer, worker_processes, sandbox, redis_client):
    handle = worker_processes.start()
    sandbox.script(TO, "internal_error", "ok")
    job_id = producer.send_sms(to=TO, sender="F", text="secret check")
    final_record(producer, job_id)

    for key in redis_client.scan_iter("*"):
        assert TEST_API_SECRET not in key
        kind = redis_client.type(key)
        dump = {
            "string": lambda: redis_client.get(key),
            "hash": lambda: str(redis_client.hgetall(key)),
            "list": lambda: str(redis_client.lrange(key, 0, -1)),
            "zset": lambda: str(redis_client.zrange(key, 0, -1)),
            "set": lambda: str(redis_client.smembers(key)),
            "stream": lambda: str(redis_client.xrange(key, count=10_000)),
        }.get(kind, lambda: "")()
        assert TEST_API_SECRET not in (dump or ""), key
        assert TEST_API_KEY not in (dump or ""), key
    assert TEST_API_SECRET not in handle.log()
