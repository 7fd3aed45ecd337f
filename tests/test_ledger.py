"""Every ledger script path, called directly against a real Redis (milliseconds each)."""

from __future__ import annotations

import calendar
import json
import time
from typing import cast

import pytest

from config.errors import IdempotencyConflict, InvalidMessage
from ledger.outbox import chunk_messages
from ledger.schema import STEP, batch_job_id
from ledger.stats import stats
from producers.producer import SmsProducer

TO = "033334445566770"
OTHER = "033334445566771"


@pytest.fixture
def producer(settings_for, redis_client) -> SmsProducer:
    return SmsProducer(settings_for(COSMOS_BREAKER_THRESHOLD="3", COSMOS_MAX_AMBIGUOUS_RESENDS="1"))


@pytest.fixture
def ledger(producer):
    return producer.ledger


def job(producer, to=TO, text="hi", **kwargs) -> str:
    return producer.send_sms(to=to, sender="F", text=text, **kwargs)


def field(ledger, job_id, name):
    return ledger.redis.hget(ledger.keys.job(job_id), name)


def counter(ledger, name) -> int:
    return int(float(ledger.counters().get(name, 0)))


def go(ledger, job_id, owner="w1", count_delivery=True):
    attempt = ledger.begin(job_id, owner, count_delivery=count_delivery)
    assert attempt.verdict == "go", attempt
    return attempt


def sent(ledger, job_id, message_id="m-1"):
    go(ledger, job_id)
    finished = ledger.finish(job_id, "w1", "accepted", status="ok", http=200, message_id=message_id, price=0.05)
    assert finished[0] == "sent"


def receipt(ledger, job_id, message_id="m-1", status="delivered", to=TO):
    return ledger.apply_receipt(
        job_id, to=to, status=status, message_id=message_id, price=0.04, timestamp="2026-12-01 10:00:00"
    )


def expire_lease(ledger, job_id):
    ledger.redis.hset(ledger.keys.job(job_id), "lease_ts", 0)


# --- enqueue ---------------------------------------------------------------------------------
def test_enqueue_records_job_indexes_and_one_event(producer, ledger):
    job_id = job(producer)
    record = ledger.get(job_id)
    assert (record["state"], record["to"], record["attempts"]) == ("queued", TO, 0)
    assert ledger.redis.zscore(ledger.keys.created, job_id) is not None
    assert ledger.redis.zscore(ledger.keys.by_number(TO), job_id) is not None
    assert ledger.redis.zscore(ledger.keys.outbox("single"), job_id) is not None
    assert ledger.redis.zscore(ledger.keys.deadlines, job_id) is not None
    [(_, event)] = ledger.redis.xrange(ledger.keys.events)
    assert (event["job"], event["state"], event["prev"]) == (job_id, "queued", "")
    assert stats(ledger)["states"]["queued"] == 1
    assert stats(ledger)["states_by_lane"]["single"]["queued"] == 1


def test_a_task_takes_waiting_single_messages_with_their_leases_and_anything_else_goes_back(producer, ledger):
    own, first, second, third = (job(producer, text=f"code {i}") for i in range(4))
    single = ledger.keys.broker_queue_key("single")
    ledger.redis.rpop(single)  # the task's own message: Celery delivered it
    chunk = chunk_messages(ledger.keys, ["some-bulk-job"], 50)[0][1]
    ledger.redis.lpush(single, chunk)  # newest: behind the three singles
    ledger.redis.lpush(single, "not a task message")

    mine, taken = ledger.take(own, "w1", 2)

    assert mine.verdict == "go"
    assert [(j, a.verdict) for j, _, a in taken] == [(first, "go"), (second, "go")]
    # Taken and leased in the same step: no job is off the list without its lease.
    assert ledger.states([own, first, second, third]) == ["sending", "sending", "sending", "queued"]
    # Repeated with the same owner (redis-py's retry after a lost reply): the same answer, nothing more taken.
    assert [(j, o) for j, o, _ in ledger.take(own, "w1", 2)[1]] == [(j, o) for j, o, _ in taken]
    assert [j for j, _, _ in ledger.take(own, "w2", 10)[1]] == [third]
    # What was not ours to take is back in the list, in its order, next for the consumers.
    assert [m if isinstance(m, str) else m.decode() for m in ledger.redis.lrange(single, 0, -1)] == [
        "not a task message",
        chunk,
    ]
    assert ledger.take(own, "w3", 0)[1] == []


def test_bulk_is_written_in_steps_and_repeating_its_batch_records_nothing_new(producer, ledger):
    messages = [{"to": TO, "sender": "F", "text": f"m{i}"} for i in range(STEP + 5)]
    ids = producer.send_bulk(messages, batch_id="campaign-1")
    assert ids[0] == batch_job_id("campaign-1", 0) and len(set(ids)) == STEP + 5
    pushed = ledger.redis.llen(ledger.keys.broker_queue_key("bulk"))
    assert producer.send_bulk(messages, batch_id="campaign-1") == ids
    assert ledger.redis.llen(ledger.keys.broker_queue_key("bulk")) == pushed  # nothing published twice
    info = producer.get_batch("campaign-1")
    assert (info["total"], info["states"]) == (STEP + 5, {"queued": STEP + 5})
    assert ledger.get(ids[-1])["batch_id"] == "campaign-1"


def test_a_different_list_under_the_same_batch_id_conflicts_before_any_write(producer, ledger):
    producer.send_bulk([{"to": TO, "sender": "F", "text": "a"}], batch_id="b1")
    before = ledger.redis.dbsize()
    with pytest.raises(IdempotencyConflict):
        producer.send_bulk([{"to": TO, "sender": "F", "text": "changed"}], batch_id="b1")
    assert ledger.redis.dbsize() == before


@pytest.mark.parametrize("batch_id", [7, "", "   ", "x" * 201])
def test_bad_batch_id_is_refused_naming_it(producer, ledger, batch_id):
    before = ledger.redis.dbsize()  # the server is shared by a module's tests: count, not zero
    with pytest.raises(InvalidMessage) as err:
        producer.send_bulk([{"to": TO, "sender": "F", "text": "a"}], batch_id=batch_id)
    assert err.value.field == "batch_id"
    assert ledger.redis.dbsize() == before


def test_a_repeated_idempotency_key_within_one_call_names_its_index(producer, ledger):
    before = ledger.redis.dbsize()
    with pytest.raises(InvalidMessage) as err:
        producer.send_bulk(
            [
                {"to": TO, "sender": "F", "text": "a", "idempotency_key": "k"},
                {"to": TO, "sender": "F", "text": "b", "idempotency_key": "k"},
            ]
        )
    assert (err.value.field, err.value.index) == ("idempotency_key", 1)
    assert ledger.redis.dbsize() == before


def test_a_conflicting_key_late_in_a_bulk_raises_before_anything_is_written(producer, ledger):
    job(producer, text="original", idempotency_key="k-9")
    before = ledger.redis.dbsize()
    messages = [{"to": TO, "sender": "F", "text": f"m{i}"} for i in range(STEP + 10)]
    messages[-1] = {"to": TO, "sender": "F", "text": "other", "idempotency_key": "k-9"}
    with pytest.raises(IdempotencyConflict):
        producer.send_bulk(messages)
    assert ledger.redis.dbsize() == before


def test_cancel_batch_cancels_unsent_members_and_the_batch_takes_no_new_ones(producer, ledger):
    messages = [{"to": TO, "sender": "F", "text": f"m{i}"} for i in range(3)]
    ids = producer.send_bulk(messages, batch_id="b2")
    sent(ledger, ids[0])
    assert producer.cancel_batch("b2") == 2
    assert producer.get_batch("b2")["states"] == {"sent": 1, "cancelled": 2}
    with pytest.raises(InvalidMessage):
        producer.send_bulk(messages, batch_id="b2")
    assert producer.get_batch("unknown") is None and producer.cancel_batch("unknown") == 0


# --- begin -----------------------------------------------------------------------------------
def test_begin_leases_once_and_counts_the_attempt(producer, ledger):
    job_id = job(producer)
    attempt = go(ledger, job_id)
    assert (attempt.number, attempt.to, attempt.text) == (1, TO, "hi")
    assert ledger.begin(job_id, "w2", count_delivery=True).verdict == "skip"
    assert ledger.begin("nope", "w2", count_delivery=True).detail == "missing"
    assert counter(ledger, "attempts") == 1


def test_lost_lease_with_a_request_in_flight_is_resent_and_counted(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    expire_lease(ledger, job_id)
    assert go(ledger, job_id, owner="w2").number == 2
    assert ledger.get(job_id)["ambiguous_resends"] == 1
    assert field(ledger, job_id, "doubt") == "1"


def test_lost_lease_after_the_resend_allowance_is_held(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    expire_lease(ledger, job_id)
    go(ledger, job_id, owner="w2")  # the one resend allowed (COSMOS_MAX_AMBIGUOUS_RESENDS=1)
    expire_lease(ledger, job_id)
    assert ledger.begin(job_id, "w3", count_delivery=True).verdict == "held"
    assert ledger.redis.zscore(ledger.keys.held, job_id) is not None


def test_a_receipt_stored_while_sending_settles_the_job_instead_of_a_resend(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    assert receipt(ledger, job_id) == "pending"
    expire_lease(ledger, job_id)
    assert ledger.begin(job_id, "w2", count_delivery=True).verdict == "sent"
    record = ledger.get(job_id)
    assert (record["state"], record["message_id"], record["attempts"]) == ("delivered", "m-1", 1)


def test_a_delivery_that_records_an_outcome_is_not_counted_towards_poison(producer, ledger):
    job_id = job(producer)
    for _ in range(5):  # more bursts than COSMOS_POISON_DELIVERIES, each ending in an outcome
        go(ledger, job_id)
        ledger.finish(job_id, "w1", "defer", delay_s=0)
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"


def test_expired_suppressed_poison_and_exhausted_jobs_end_without_a_request(producer, ledger, settings_for):
    expired = job(producer)
    ledger.redis.hset(ledger.keys.job(expired), "expires_ts", 1)
    assert ledger.begin(expired, "w", count_delivery=True).verdict == "expired"
    ledger.suppress([OTHER])
    assert ledger.begin(job(producer, to=OTHER), "w", count_delivery=True).detail == "suppressed"
    poison = job(producer)
    ledger.redis.hset(ledger.keys.job(poison), "deliveries", 3)
    assert ledger.begin(poison, "w", count_delivery=True).detail == "poison"
    exhausted = job(producer)
    ledger.redis.hset(ledger.keys.job(exhausted), "attempts", 1000)
    assert ledger.begin(exhausted, "w", count_delivery=True).detail == "retries_exhausted"
    assert stats(ledger)["dead_reasons"] == {"suppressed": 1, "poison": 1, "retries_exhausted": 1}
    assert stats(ledger)["states"]["expired"] == 1


def test_an_operator_pause_defers_without_spending_an_attempt(producer, ledger):
    ledger.redis.hset(ledger.keys.pause, "op:single", json.dumps({"reason": "maintenance", "by": "ann", "ts": 1}))
    job_id = job(producer)
    assert ledger.begin(job_id, "w", count_delivery=True).verdict == "wait"
    assert (ledger.get(job_id)["state"], ledger.get(job_id)["attempts"]) == ("retrying", 0)
    assert ledger.claim_due() == []  # a paused lane's due jobs stay where they are
    assert stats(ledger)["paused"]["kind"] == "operator"
    ledger.redis.hdel(ledger.keys.pause, "op:single")
    assert [(j, why) for j, _, why in ledger.claim_due()] == [(job_id, "due")]


def test_account_pause_lets_one_probe_through_per_interval(producer, ledger):
    first, second = job(producer), job(producer)
    go(ledger, first)
    assert ledger.finish(first, "w1", "account", status="unauthorized", http=401) == ("paused", "paused")
    assert stats(ledger)["paused"]["reason"] == "unauthorized"
    probe = ledger.begin(second, "w2", count_delivery=True)
    assert probe.verdict == "go" and probe.probe
    assert ledger.get(second)["attempts"] == 0  # a probe is not counted against the job
    assert ledger.begin(first, "w3", count_delivery=True).verdict == "wait"
    assert ledger.finish(second, "w2", "accepted", status="ok", http=200, message_id="m-2", price=0)[0] == "sent"
    assert ledger.pause_state() == {}
    assert ledger.get(first)["state"] == "retrying" and ledger.get(first)["dead_reason"] is None


def test_bulk_reserves_rate_slots_only_a_little_ahead_and_singles_go_first(settings_for, redis_client):
    producer = SmsProducer(settings_for(COSMOS_RATE_LIMIT="20"))
    ledger = producer.ledger
    bulk = producer.send_bulk([{"to": TO, "sender": "F", "text": f"b{i}"} for i in range(5)])
    verdicts = [ledger.begin(j, f"w{j}", count_delivery=False).verdict for j in bulk]
    assert verdicts[:2] == ["go", "go"] and "busy" in verdicts  # 50 ms ahead at 20/s: about 2 slots
    single = ledger.begin(job(producer), "ws", count_delivery=True)
    assert single.verdict == "go" and single.delay_s < 0.05


# --- finish ----------------------------------------------------------------------------------
def test_transient_failures_open_the_breaker_and_deferred_jobs_wait_for_it(producer, ledger):
    jobs = [job(producer) for _ in range(4)]
    for job_id in jobs[:3]:
        go(ledger, job_id)
        result, change = ledger.finish(job_id, "w1", "transient", status="internal_error", http=500)
    assert (result, change) == ("retry", "open")
    assert ledger.begin(jobs[3], "w1", count_delivery=True).verdict == "wait"
    assert ledger.claim_due() == []  # nothing is republished while the breaker is open
    assert ledger.finish(jobs[0], "w1", "defer", delay_s=0)[0] == "retrying"


def test_permanent_outcome_dead_letters_and_blacklist_suppresses(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    assert ledger.finish(job_id, "w1", "permanent", status="blacklist", http=200)[0] == "dead"
    assert ledger.get(job_id)["dead_reason"] == "blacklist"
    assert OTHER not in set(ledger.suppressed()) and TO in set(ledger.suppressed())


def test_ambiguous_attempts_resend_up_to_the_allowance_then_hold(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    assert ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)[0] == "retry"
    go(ledger, job_id)
    assert ledger.get(job_id)["ambiguous_resends"] == 1
    assert ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)[0] == "held"


def test_only_the_lease_owner_records_a_failure_but_any_acceptance_counts(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    assert ledger.finish(job_id, "intruder", "transient", status="timeout", http=0)[0] == "lost_lease"
    assert ledger.finish(job_id, "w1", "accepted", status="ok", http=200, message_id="m-1", price=0)[0] == "sent"
    assert ledger.finish(job_id, "w2", "accepted", status="ok", http=200, message_id="m-1", price=0)[0] == "duplicate"
    assert ledger.finish(job_id, "w2", "accepted", status="ok", http=200, message_id="m-9", price=0)[0] == "extra"
    assert ledger.finish("nope", "w", "accepted")[0] == "missing"


def test_a_late_acceptance_overturns_expired_and_requeue_refuses_it(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    ledger.redis.hset(ledger.keys.job(job_id), "expires_ts", 1)
    expire_lease(ledger, job_id)
    ledger.begin(job_id, "w2", count_delivery=True)
    assert ledger.get(job_id)["state"] == "expired"
    assert ledger.finish(job_id, "w1", "accepted", status="ok", http=200, message_id="m-1", price=0)[0] == "sent"
    record = ledger.get(job_id)
    assert (record["state"], record["late"]) == ("sent", True)
    assert ledger.operate("requeue", job_id)[0] is False
    assert counter(ledger, "late") == 1


# --- receipts --------------------------------------------------------------------------------
def test_receipt_for_the_own_message_id_delivers_and_a_replay_changes_nothing(producer, ledger):
    job_id = job(producer)
    sent(ledger, job_id)
    assert receipt(ledger, job_id) == "applied"
    record = ledger.get(job_id)
    assert (record["state"], record["price"]) == ("delivered", 0.04)
    assert receipt(ledger, job_id) == "duplicate"
    assert ledger.get(job_id) == record
    assert receipt(ledger, job_id, to=OTHER) == "to_mismatch"
    assert receipt(ledger, "nope") == "unknown_job"


def test_a_foreign_message_id_on_a_clean_record_is_refused_and_changes_nothing(producer, ledger):
    job_id = job(producer)
    sent(ledger, job_id)
    before = ledger.redis.hgetall(ledger.keys.job(job_id))
    assert receipt(ledger, job_id, message_id="forged") == "refused_foreign"
    assert ledger.redis.hgetall(ledger.keys.job(job_id)) == before
    queued = job(producer)
    assert receipt(ledger, queued, message_id="forged") == "refused_foreign"
    assert ledger.get(queued)["state"] == "queued"


def test_a_foreign_message_id_after_an_unknown_outcome_counts_once_and_ids_stay_bounded(producer, ledger):
    job_id = job(producer)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "accepted", status="ok", http=200, message_id="m-2", price=0)
    assert receipt(ledger, job_id, message_id="m-1") == "extra"
    assert receipt(ledger, job_id, message_id="m-1") == "duplicate"
    for i in range(20):
        receipt(ledger, job_id, message_id=f"x-{i}")
    assert len(field(ledger, job_id, "extra_ids").split(";")) <= 5


def test_a_receipt_for_a_dead_job_is_the_providers_word_after_an_unknown_outcome(producer, ledger):
    refused = job(producer)
    go(ledger, refused)
    ledger.finish(refused, "w1", "permanent", status="failed", http=200)
    assert receipt(ledger, refused) == "refused_foreign"  # COSMOS refused its only attempt: no evidence
    job_id = job(producer)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "permanent", status="failed", http=200)
    assert receipt(ledger, job_id) == "late"
    record = ledger.get(job_id)
    assert (record["state"], record["late"], record["dead_reason"]) == ("delivered", True, None)
    assert stats(ledger)["dead_letter_size"] == 1  # the refused one


def test_a_receipt_settles_a_held_job(producer, ledger, settings_for):
    job_id = job(producer)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)
    go(ledger, job_id)
    ledger.finish(job_id, "w1", "ambiguous", status="connection_lost", http=0)
    assert ledger.get(job_id)["state"] == "held"
    assert receipt(ledger, job_id, message_id="m-7") == "settled"
    assert ledger.get(job_id)["state"] == "delivered"


# --- claim -----------------------------------------------------------------------------------
def test_claim_releases_single_retries_first_and_ends_jobs_past_their_deadline(producer, ledger):
    bulk = producer.send_bulk([{"to": TO, "sender": "F", "text": "b"}])[0]
    single = job(producer)
    for job_id in (bulk, single):
        go(ledger, job_id, count_delivery=False)
        ledger.finish(job_id, "w1", "defer", delay_s=0)
    waiting = job(producer)
    ledger.redis.hset(ledger.keys.job(waiting), "expires_ts", 1)
    ledger.redis.zadd(ledger.keys.deadlines, {waiting: 1})
    picked = ledger.claim_due()
    assert [(j, lane, why) for j, lane, why in picked] == [(single, "single", "due"), (bulk, "bulk", "due")]
    assert ledger.get(waiting)["state"] == "expired"


def test_claim_republishes_a_dead_workers_lease_and_a_lost_message_only_on_evidence(producer, ledger):
    leased = job(producer)
    go(ledger, leased)
    expire_lease(ledger, leased)
    ledger.redis.zadd(ledger.keys.leases, {leased: 1})
    queued = job(producer)
    ledger.redis.zadd(ledger.keys.outbox("single"), {queued: 1})
    picked = {(j, why) for j, _, why in ledger.claim_due()}
    assert (leased, "lease_expired") in picked
    assert (queued, "stale_queued") not in picked  # its message is still in its lane
    ledger.redis.delete(ledger.keys.broker_queue_key("single"))
    ledger.redis.zadd(ledger.keys.outbox("single"), {queued: 1})
    assert (queued, "single", "stale_queued") in ledger.claim_due()


# --- operator actions and retention -------------------------------------------------------------
def test_operator_actions(producer, ledger):
    dead = job(producer)
    go(ledger, dead)
    ledger.finish(dead, "w1", "permanent", status="failed", http=200)
    assert ledger.operate("requeue", dead) == (True, "single")
    assert ledger.get(dead)["state"] == "queued" and ledger.get(dead)["attempts"] == 0
    assert ledger.operate("cancel", dead) == (True, "single")
    assert ledger.operate("cancel", dead)[0] is False
    withdrawn = job(producer)
    assert ledger.operate("withdraw", withdrawn, "unreplicated") == (True, "single")
    assert ledger.get(withdrawn)["last_error"] == "unreplicated"
    held = job(producer)
    go(ledger, held)
    ledger.finish(held, "w1", "ambiguous", status="x", http=0)
    go(ledger, held)
    ledger.finish(held, "w1", "ambiguous", status="x", http=0)
    assert ledger.operate("mark_sent", held)[0] and ledger.get(held)["state"] == "sent"
    assert ledger.operate("resend", held)[0] is False


def test_requeue_of_a_suppressed_job_waits_for_its_number_to_leave_the_list(producer, ledger):
    ledger.suppress([TO])
    job_id = job(producer)
    ledger.begin(job_id, "w", count_delivery=True)
    assert ledger.operate("requeue", job_id) == (False, "its number is still on the suppression list")
    ledger.unsuppress([TO])
    assert ledger.operate("requeue", job_id)[0]


def test_purge_and_sweep_remove_the_record_with_every_index_and_correct_the_counts(producer, ledger):
    purged, swept = job(producer, idempotency_key="k1"), job(producer)
    for job_id in (purged, swept):
        go(ledger, job_id)
        ledger.finish(job_id, "w1", "permanent", status="failed", http=200)
    assert ledger.operate("purge", purged)[0]
    ledger.redis.zadd(ledger.keys.retention, {swept: 1})
    assert ledger.sweep() == 1
    for job_id in (purged, swept):
        assert not ledger.redis.exists(ledger.keys.job(job_id))
        assert ledger.redis.zscore(ledger.keys.created, job_id) is None
        assert ledger.redis.zscore(ledger.keys.by_number(TO), job_id) is None
        assert ledger.redis.zscore(ledger.keys.dead, job_id) is None
    assert not ledger.redis.exists(ledger.keys.idempotency("k1"))
    figures = stats(ledger)
    assert figures["states"]["dead"] == 0 and figures["dead_reasons"] == {} and figures["swept"] == 1


def test_a_sent_job_that_never_got_a_receipt_is_swept_a_retention_after_it_was_sent(producer, ledger):
    job_id = job(producer)
    sent(ledger, job_id)
    assert ledger.sweep() == 0
    ledger.redis.zadd(ledger.keys.awaiting, {job_id: 1})
    assert ledger.sweep() == 1
    assert not ledger.redis.exists(ledger.keys.job(job_id), ledger.keys.message_id("m-1"))
    assert stats(ledger)["states"]["sent"] == 0


def test_dead_letters_are_paged_through_whole_sets_even_with_equal_scores(producer, ledger):
    ids = [f"j{i:05d}" for i in range(2 * STEP + 7)]
    ledger.redis.zadd(ledger.keys.dead, {job_id: 5.0 for job_id in ids})
    seen = [job_id for page in ledger.iter_ids(ledger.keys.dead) for job_id in page]
    assert sorted(seen) == ids


def test_a_forward_of_our_own_final_state_carries_our_time_in_cosmos_form(settings_for, redis_client):
    producer = SmsProducer(
        settings_for(COSMOS_WEBHOOK_URL="https://sms.example.com/delivery-status", COSMOS_WEBHOOK_SECRET="s" * 32)
    )
    job_id = job(producer, callback="https://app.example.com/hook")
    assert producer.cancel(job_id)
    # decode_responses: members and values are str.
    [forward_id] = cast(list[str], producer.ledger.redis.zrange(producer.keys.forwards_due, 0, -1))
    payload = json.loads(cast(str, producer.ledger.redis.hget(producer.keys.forward(forward_id), "payload")))
    assert (payload["status"], payload["message_id"], payload["price"]) == ("cancelled", None, None)
    stamped = calendar.timegm(time.strptime(payload["message_timestamp"], "%Y-%m-%d %H:%M:%S"))
    assert abs(stamped - producer.ledger.redis.time()[0]) <= 2


def test_a_final_state_of_a_forwarded_job_writes_its_forward_intent(settings_for, redis_client):
    producer = SmsProducer(
        settings_for(COSMOS_WEBHOOK_URL="https://sms.example.com/delivery-status", COSMOS_WEBHOOK_SECRET="s" * 32)
    )
    ledger = producer.ledger
    job_id = job(producer, callback="https://app.example.com/hook")
    sent(ledger, job_id)
    assert receipt(ledger, job_id) == "applied"
    [forward_id] = cast(list[str], ledger.redis.zrange(ledger.keys.forwards_due, 0, -1))  # decode_responses
    intent = ledger.redis.hgetall(ledger.keys.forward(forward_id))
    payload = json.loads(intent["payload"])
    assert intent["url"] == "https://app.example.com/hook" and intent["webhook_id"]
    assert (payload["status"], payload["job_id"], payload["message_id"], payload["to"]) == (
        "delivered",
        job_id,
        "m-1",
        TO,
    )
    assert payload["message_timestamp"] == "2026-12-01 10:00:00"


def test_a_lock_is_released_only_by_its_holder(ledger):
    assert ledger.take_lock("reconciler", "a", 60_000)
    assert not ledger.take_lock("reconciler", "b", 60_000)
    assert not ledger.release_lock("reconciler", "b")  # not its lock: still held by a
    assert not ledger.take_lock("reconciler", "b", 60_000)
    assert ledger.release_lock("reconciler", "a")
    assert ledger.take_lock("reconciler", "b", 60_000)


def test_closing_a_batch_refuses_an_unknown_one_and_writes_nothing(ledger, producer):
    assert not ledger.close_batch("no-such-batch")
    assert ledger.redis.exists(ledger.keys.batch("no-such-batch")) == 0
    producer.send_bulk([{"to": TO, "sender": "F", "text": "hi"}], batch_id="b-close")
    assert ledger.close_batch("b-close") and ledger.batch_info("b-close")["cancelled"]
