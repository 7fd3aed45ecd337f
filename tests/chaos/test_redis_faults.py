"""Redis faults: a restart from its AOF loses nothing; an unreachable Redis fails enqueue fast."""

from __future__ import annotations

import time

import pytest

from config.errors import EnqueueFailed
from producers.producer import SmsProducer
from tests.chaos.conftest import load, settle, tally
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.worker_fixture import WorkerPool

TO = "033334445566770"
REDIS_OUTAGE_S = 6
"""Seconds Redis stays down (time scaled down from 10 s; still over half the chaos lease)."""


@pytest.fixture
def aof_redis(tmp_path):
    server = RedisServer(
        port=free_port(), dir=tmp_path / "aof", extra=("--appendonly", "yes", "--appendfsync", "always")
    ).start()
    yield server
    server.stop(graceful=False)


@pytest.fixture
def own_pipeline(aof_redis, pipeline_env, settings_for, sandbox, tmp_path, chaos_env):
    env = {**pipeline_env, **chaos_env, "REDIS_URL": aof_redis.url}
    pool = WorkerPool(env, tmp_path)
    producer = SmsProducer(
        settings_for(REDIS_URL=aof_redis.url, COSMOS_API_URL=sandbox.api_url, COSMOS_ENQUEUE_TIMEOUT_S="2", **chaos_env)
    )
    yield pool, producer
    pool.stop_all()


@pytest.mark.parametrize("graceful", [True, False], ids=["shutdown", "kill-9"])
def test_redis_restart_from_aof_loses_nothing(aof_redis, own_pipeline, sandbox, graceful):
    pool, producer = own_pipeline
    sandbox.set_faults(latency_ms=20)
    # Under `cosmos-sms worker`, as deployed: kombu can exit a worker process on the lost connection
    # (celery#7185), and the supervisor restarts it.
    pool.start_supervised(concurrency=8)
    job_ids, texts = load(producer, TO, 400, "restart")
    wait_for(lambda: sum(s == "sent" for s in producer.ledger.states(job_ids)) >= 50, timeout=60, what="some sent")

    aof_redis.stop(graceful=graceful)
    aof_redis.start()

    settle(producer, job_ids, timeout=180)
    result = tally(producer, sandbox, TO, job_ids, texts)
    result.show(f"redis restart graceful={graceful}")
    assert result.lost == 0 and result.states == {"sent": 400}
    assert result.silent_duplicates == 0


def test_unreachable_redis_fails_enqueue_in_bound_and_workers_resume(aof_redis, own_pipeline, sandbox):
    pool, producer = own_pipeline
    pool.start(concurrency=4)
    aof_redis.stop(graceful=True)

    started = time.monotonic()
    with pytest.raises(EnqueueFailed):
        producer.send_sms(TO, "F", "while down")
    assert time.monotonic() - started < 2 + 3  # the bound plus one socket timeout

    # An outage longer than any ride-out of a blip (half a lease): workers must reconnect, not wait it out.
    wait_for(
        lambda: time.monotonic() - started > REDIS_OUTAGE_S,
        timeout=REDIS_OUTAGE_S + 5,
        what=f"{REDIS_OUTAGE_S} s of outage",
    )
    aof_redis.start()
    resumed = time.monotonic()
    job_id = wait_for(lambda: _try_send(producer), timeout=10, what="enqueue to work again")
    settle(producer, [job_id], timeout=60)
    assert time.monotonic() - resumed < 60
    assert sandbox.count(TO, "after") == 1


def _try_send(producer) -> str | None:
    try:
        return producer.send_sms(TO, "F", "after")
    except EnqueueFailed:
        return None
