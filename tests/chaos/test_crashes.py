"""Workers killed under load lose nothing; duplicates only where an attempt was in flight."""

from __future__ import annotations

import psutil
import pytest

from tests.chaos.conftest import load, settle, tally
from tests.support.polling import wait_for

TO = "033334445566770"


def _sent_count(producer, job_ids) -> int:
    return sum(s in ("sent", "delivered") for s in producer.ledger.states(job_ids))


def test_sigkill_one_worker_repeatedly_loses_nothing(producer, workers, sandbox, chaos_env):
    sandbox.set_faults(latency_ms=20)
    workers.start(concurrency=8, **chaos_env)  # the steady one: never killed
    victim = workers.start(concurrency=8, **chaos_env)
    job_ids, texts = load(producer, TO, 600, "kill-one")

    for round_ in range(3):
        target = 150 * (round_ + 1)
        wait_for(lambda: _sent_count(producer, job_ids) >= target, timeout=60, what=f"{target} sent")
        victim.kill()
        victim = workers.start(concurrency=8, **chaos_env)

    settle(producer, job_ids)
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show("sigkill one worker x3")
    assert result.lost == 0
    assert result.states == {"sent": 600}
    assert result.silent_duplicates == 0


@pytest.mark.parametrize("policy", ["resend", "hold"])
def test_sigkill_every_worker_then_new_ones_finish_the_load(producer, workers, sandbox, chaos_env, policy):
    sandbox.set_faults(latency_ms=200)
    first = [workers.start(concurrency=16, COSMOS_AMBIGUOUS_POLICY=policy, **chaos_env) for _ in range(2)]
    job_ids, texts = load(producer, TO, 300, f"kill-all-{policy}")
    wait_for(lambda: _sent_count(producer, job_ids) >= 60, timeout=60, what="some sent")

    for handle in first:
        handle.kill()
    in_flight = sum(s == "sending" for s in producer.ledger.states(job_ids))
    workers.start(concurrency=16, COSMOS_AMBIGUOUS_POLICY=policy, **chaos_env)

    settle(producer, job_ids)
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show(f"sigkill all workers, policy={policy}, in flight={in_flight}")
    assert result.lost == 0
    assert result.silent_duplicates == 0
    if policy == "hold":
        assert result.duplicates == 0
        assert set(result.states) <= {"sent", "held"}
        assert result.states.get("held", 0) <= in_flight
    else:
        assert result.states == {"sent": 300}
        assert result.duplicates <= in_flight


def test_sigterm_during_load_loses_nothing(producer, workers, sandbox, chaos_env):
    sandbox.set_faults(latency_ms=50)
    first = workers.start(concurrency=16, **chaos_env)
    job_ids, texts = load(producer, TO, 400, "sigterm")
    wait_for(lambda: _sent_count(producer, job_ids) >= 50, timeout=60, what="some sent")

    first.terminate(timeout=60)
    assert first.proc.returncode is not None
    workers.start(concurrency=16, **chaos_env)

    settle(producer, job_ids)
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show("sigterm")
    assert result.lost == 0 and result.states == {"sent": 400}
    assert result.duplicates == 0  # a graceful stop finishes in-flight attempts


def test_poison_job_ends_dead_after_n_deliveries_and_others_go_on(producer, workers, sandbox, chaos_env):
    poison_to = "011111111111111"
    # The poison message is in flight (stalled) whenever we kill its worker.
    sandbox.script(poison_to, *["stall 30"] * 10)
    env = {
        **chaos_env,
        "COSMOS_POISON_DELIVERIES": "3",
        "COSMOS_BURST_ATTEMPTS": "1",
        "COSMOS_READ_TIMEOUT_S": "2",  # far below the stall; its lease (and each redelivery) is that short
        "COSMOS_AMBIGUOUS_POLICY": "resend",
    }
    job_id = producer.send_sms(poison_to, "chaos", "poison")
    others = [producer.send_sms(TO, "chaos", f"neighbour {i}") for i in range(20)]

    def owner() -> str | None:
        return producer.redis.hget(producer.keys.job(job_id), "owner")

    deliveries, last_owner = 0, None
    while deliveries < 6:
        handle = workers.start(concurrency=4, **env)
        # A new owner means a new delivery took the lease; dead means the ledger refused it.
        wait_for(
            lambda: producer.get_status(job_id)["state"] == "dead" or owner() not in (None, last_owner),
            timeout=90,
            what="the poison job to be taken again",
        )
        if producer.get_status(job_id)["state"] == "dead":
            break
        last_owner = owner()
        deliveries += 1
        # Kill only while the poison job alone is in flight: a neighbour caught mid-send by
        # every kill would rightly count as a crash of its own.
        wait_for(
            lambda: "sending" not in producer.ledger.states(others),
            timeout=60,
            what="the neighbours to leave `sending`",
        )
        handle.kill()
    record = producer.get_status(job_id)

    assert record["dead_reason"] == "poison"
    assert deliveries == 3
    settle(producer, others)
    assert set(producer.ledger.states(others)) == {"sent"}


def test_a_lane_process_that_dies_under_cosmos_sms_worker_is_restarted_and_nothing_is_lost(
    producer, workers, sandbox, chaos_env
):
    handle = workers.start_supervised(concurrency=4, **chaos_env)
    lanes = psutil.Process(handle.proc.pid).children()
    assert len(lanes) == 2
    job_ids, texts = load(producer, TO, 200, "supervised")
    wait_for(lambda: sandbox.stats()["requests"] >= 20, timeout=30, what="the load to be under way")

    for lane in lanes:  # as kombu's crash on a lost connection would end them, or the OOM killer
        lane.kill()
    wait_for(lambda: handle.log().count("restarting in") >= 2, timeout=10, what="the supervisor to notice")
    wait_for(lambda: handle.log().count(" ready") >= 4, timeout=30, what="both lanes to be back")

    settle(producer, job_ids, timeout=90)
    result = tally(producer, sandbox, TO, job_ids, texts)
    assert result.lost == 0 and result.states == {"sent": 200}
    assert result.silent_duplicates == 0
    assert handle.proc.poll() is None  # the supervisor itself goes on
