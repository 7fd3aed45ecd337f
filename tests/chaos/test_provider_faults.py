"""Provider faults: outages, random transient faults, ambiguous answers, the global rate."""

from __future__ import annotations

import pytest

from config.settings import Settings
from ledger.outbox import republish
from ledger.stats import stats
from tests.chaos.conftest import load, outage_over, settle, tally
from tests.support.polling import wait_for

TO = "033334445566770"


def test_outage_opens_the_breaker_and_the_backlog_drains_without_exhausting(producer, workers, sandbox, chaos_env):
    # Time scaled down from a 30 s outage and 5 s open: the same 6 open periods fit in the outage.
    outage_s, threshold, open_s, concurrency = 9, 10, 1.5, 8
    env = {
        **chaos_env,
        "COSMOS_MAX_ATTEMPTS": "8",
        "COSMOS_BREAKER_THRESHOLD": str(threshold),
        "COSMOS_BREAKER_OPEN_S": str(open_s),
    }
    workers.start(concurrency=concurrency, **env)
    sandbox.outage(outage_s)
    job_ids, texts = load(producer, TO, 200, "outage", bulk=False)

    wait_for(lambda: stats(producer.ledger)["breaker"]["state"] != "closed", timeout=20, what="the breaker to open")
    wait_for(lambda: outage_over(sandbox), timeout=outage_s + 5, what="the outage to end")
    during = sandbox.stats()["by_status"].get("internal_error", 0)
    settle(producer, job_ids, timeout=120)

    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show(f"outage {outage_s}s: requests during it={during}")
    assert result.states == {"sent": 200}
    # Each batch thread may have one attempt in flight when the breaker opens.
    batch_threads = Settings.model_fields["batch_threads"].default
    assert during <= threshold + outage_s / open_s + concurrency + batch_threads
    assert stats(producer.ledger)["dead_reasons"].get("retries_exhausted", 0) == 0
    assert stats(producer.ledger)["breaker"]["times_opened"] >= 1


def test_random_transient_faults_end_with_each_message_accepted_once(producer, workers, sandbox, chaos_env):
    sandbox.set_faults(fault_rate=0.3)
    # The sandbox's dropped connections never accept, but look ambiguous to us: allow the resends
    # (the default of 2 would rightly hold the rare job dropped three times).
    workers.start(concurrency=16, COSMOS_MAX_AMBIGUOUS_RESENDS="50", **chaos_env)
    job_ids, texts = load(producer, TO, 1000, "faults")

    settle(producer, job_ids, timeout=180)
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show("30% transient faults")
    assert result.states == {"sent": 1000}
    assert result.duplicates == 0  # drop, 500 and 408 never accept: a resend is never a duplicate


def test_accept_drop_and_stall_are_ambiguous_and_hold_prevents_a_resend(producer, workers, sandbox, chaos_env):
    dropped, stalled = "022222222222221", "022222222222222"
    sandbox.script(dropped, "accept_drop")
    sandbox.script(stalled, "stall 3")
    workers.start(concurrency=4, COSMOS_AMBIGUOUS_POLICY="hold", **chaos_env)  # read timeout 1 s < 3 s
    ids = [producer.send_sms(dropped, "F", "ambiguous 1"), producer.send_sms(stalled, "F", "ambiguous 2")]

    states = settle(producer, ids)
    assert states == ["held", "held"]
    assert stats(producer.ledger)["ambiguous_attempts"] == 2
    assert sandbox.count(dropped, "ambiguous 1") == 1 and sandbox.count(stalled, "ambiguous 2") == 1
    assert sandbox.stats()["requests"] == 2


def test_ambiguous_attempt_under_resend_is_counted_as_an_ambiguous_resend(producer, workers, sandbox, chaos_env):
    sandbox.script(TO, "accept_drop", "ok")
    workers.start(concurrency=4, **chaos_env)
    job_id = producer.send_sms(TO, "F", "resend me")

    [state] = settle(producer, [job_id])
    record = producer.get_status(job_id)
    assert state == "sent" and record["ambiguous_resends"] == 1
    assert stats(producer.ledger)["ambiguous_resends"] == 1
    assert sandbox.count(TO, "resend me") == 2


def test_redelivered_message_of_a_sent_job_makes_no_request(producer, workers, sandbox, chaos_env):
    workers.start(concurrency=1, **chaos_env)
    job_id = producer.send_sms(TO, "F", "only once")
    settle(producer, [job_id])
    assert sandbox.stats()["requests"] == 1

    republish(producer.redis, producer.keys, [(job_id, "single")])  # as if redelivered
    barrier = producer.send_sms(TO, "F", "barrier")  # same lane, one thread: runs after it
    settle(producer, [barrier])

    assert sandbox.count(TO, "only once") == 1
    assert sandbox.stats()["requests"] == 2


@pytest.mark.parametrize("count", [400, pytest.param(1100, marks=pytest.mark.long)])
def test_global_rate_limit_holds_across_two_workers(producer, workers, sandbox, chaos_env, count):
    env = {**chaos_env, "COSMOS_RATE_LIMIT": "50"}
    workers.start(concurrency=16, **env)
    workers.start(concurrency=16, **env)
    job_ids, texts = load(producer, TO, count, "rate")

    settle(producer, job_ids, timeout=120)
    figures = sandbox.stats()
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show(f"rate 50/s: busiest second={figures['max_per_second']}")
    assert result.states == {"sent": count}
    assert figures["max_per_second"] <= 55
    assert figures["by_status"].get("spam", 0) == 0
