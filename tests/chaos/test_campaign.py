"""Campaign scale and long trouble: outages, a wrong credential, a retried campaign, singles under a rate limit."""

from __future__ import annotations

import time

import pytest
import redis

from config.errors import EnqueueFailed
from ledger.schema import ENQUEUE_STEP
from ledger.stats import stats
from producers.producer import SmsProducer
from tests.chaos.conftest import load, settle, tally
from tests.support.polling import wait_for

TO = "033334445566770"
SINGLE_TO = "033334445566779"


@pytest.mark.parametrize("outage_s", [10, pytest.param(25, marks=pytest.mark.long)])
def test_an_outage_under_a_trickle_loses_nothing_with_default_retry_settings(producer, workers, sandbox, outage_s):
    # Defaults everywhere (a cap of 8 attempts would end these jobs dead within a minute), but for the
    # backoff cap: the deadline, not an attempt count, bounds a message's life. The first job of
    # the CI-sized outage still takes more than 8 attempts (backoff 0.5, 1, 2, 2, ... s).
    workers.start(
        concurrency=4,
        COSMOS_RETRY_BACKOFF_BASE_S="0.5",
        COSMOS_RETRY_BACKOFF_MAX_S="2",
        COSMOS_RECONCILER_INTERVAL_S="0.2",
        COSMOS_MAX_ATTEMPTS="1000",
    )
    sandbox.outage(outage_s)
    started = time.monotonic()
    ids: list[str] = []
    texts: list[str] = []
    while time.monotonic() - started < outage_s - 2:
        text = f"trickle {len(ids)}"
        ids.append(producer.send_sms(TO, "F", text))
        texts.append(text)
        wait_for(lambda: time.monotonic() - started > 2.5 * len(ids), timeout=5, interval=0.1, what="the next tick")

    settle(producer, ids, timeout=90)
    result = tally(producer, sandbox, TO, ids, texts)
    result.show(f"{outage_s}s outage under a trickle")
    assert result.states == {"sent": len(ids)}
    assert stats(producer.ledger)["dead_reasons"] == {}


def test_unauthorized_mid_load_pauses_probes_and_ends_with_nothing_dead(settings_for, workers, sandbox, chaos_env):
    # Chunks of 4 and 4 send threads: at most 4 requests are on the wire when the pause begins;
    # every 401 after those is a probe, one per probe interval across all workers.
    probe_s, refusals, in_flight = 0.5, 12, 4
    env = {
        **chaos_env,
        "COSMOS_BULK_CHUNK_SIZE": "4",
        "COSMOS_BATCH_THREADS": "4",
        "COSMOS_PAUSE_PROBE_INTERVAL_S": str(probe_s),
    }
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url, **env))
    workers.start(concurrency=2, **env)
    sandbox.script(TO, *["unauthorized"] * refusals)
    started = time.monotonic()
    ids, texts = load(producer, TO, 300, "credentials")

    wait_for(lambda: stats(producer.ledger)["paused"], timeout=20, what="sending to pause")
    assert stats(producer.ledger)["paused"]["kind"] == "account"
    settle(producer, ids, timeout=120)
    paused_for = time.monotonic() - started

    result = tally(producer, sandbox, TO, ids, texts)
    result.show(f"unauthorized for {refusals} requests")
    assert result.states == {"sent": 300}
    figures = stats(producer.ledger)
    assert figures["dead_reasons"] == {}
    assert sandbox.stats()["by_status"].get("unauthorized", 0) == refusals
    assert refusals - in_flight <= figures["probes"] <= paused_for / probe_s + 2
    assert figures["paused"] is None


def test_a_bulk_call_retried_with_its_batch_id_after_a_timeout_sends_each_message_once(
    settings_for, workers, sandbox, monkeypatch
):
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url, COSMOS_ENQUEUE_TIMEOUT_S="0.3"))
    messages = [{"to": TO, "sender": "F", "text": f"campaign {i}"} for i in range(2500)]
    enqueue = producer.ledger.enqueue
    calls = []

    def redis_lost_during_the_second_step(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise redis.ConnectionError("Redis is gone")
        result = enqueue(*args, **kwargs)
        if len(calls) == 2:
            raise redis.TimeoutError("reply lost")  # the step ran; its answer never came back
        return result

    monkeypatch.setattr(producer.ledger, "enqueue", redis_lost_during_the_second_step)
    with pytest.raises(EnqueueFailed) as failed:
        producer.send_bulk(messages, batch_id="spring-sale")
    assert failed.value.batch_id == "spring-sale" and len(failed.value.job_ids) == 2 * ENQUEUE_STEP
    monkeypatch.setattr(producer.ledger, "enqueue", enqueue)

    ids = producer.send_bulk(messages, batch_id="spring-sale")
    workers.start(concurrency=8)
    settle(producer, ids, timeout=120)

    result = tally(producer, sandbox, TO, ids, [m["text"] for m in messages])
    assert result.states == {"sent": 2500}
    assert result.duplicates == 0 and sandbox.accepted()["total"] == 2500
    batch = producer.get_batch("spring-sale")
    assert batch is not None and batch["states"] == {"sent": 2500}


def test_a_single_under_the_rate_limit_overtakes_the_bulk_backlog(producer, workers, sandbox, chaos_env):
    # The topology of `cosmos-sms worker`: the lanes in processes of their own.
    workers.start(concurrency=3, lane="bulk", COSMOS_RATE_LIMIT="40", **chaos_env)
    workers.start(concurrency=4, lane="single", COSMOS_RATE_LIMIT="40", **chaos_env)
    producer.send_bulk([{"to": TO, "sender": "F", "text": f"backlog {i}"} for i in range(400)])
    wait_for(lambda: sandbox.stats()["requests"] >= 40, timeout=30, what="the backlog to be under way")

    before = sandbox.stats()["requests"]
    job_id = producer.send_sms(SINGLE_TO, "F", "one-time code")
    wait_for(lambda: producer.get_status(job_id)["state"] == "sent", timeout=10, what="the single to be sent")

    log = sandbox.messages(1000)
    position = next(i for i, m in enumerate(log) if m["to"] == SINGLE_TO)
    bulk_between = sum(1 for m in log[:position] if m["to"] == TO) - before
    print(f"\n[rate limit 40/s] bulk requests between the single's enqueue and its arrival: {bulk_between}")
    assert bulk_between < 10
