"""After a Redis restart, queued jobs whose broker messages were lost are sent again within 10 s.

A private Redis with an append-only file; a supervised worker on it. Queued jobs lose their broker
messages (the list is emptied, as a restart does to messages taken but not acked, or written after the
last fsync), then Redis restarts. The lost-message rule alone waits COSMOS_REQUEUE_GRACE_S (60 s);
the reconciler notices the new Redis run and republishes them at once.
"""

from __future__ import annotations

import time

import pytest

from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.redis_server import start_private_redis

TO = "033334445566770"
BOUND_S = 10


@pytest.fixture
def restartable_redis(tmp_path):
    server = start_private_redis(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    yield server
    server.stop(graceful=False)


def test_queued_jobs_whose_messages_were_lost_are_sent_within_ten_seconds_of_a_restart(
    restartable_redis, worker_processes, settings_for, sandbox
):
    env = dict(REDIS_URL=restartable_redis.url, COSMOS_REQUEUE_GRACE_S="60")
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url, **env))
    ids = [producer.send_sms(TO, "F", f"lost {n}") for n in range(20)]
    producer.redis.delete(producer.keys.broker_queue_key("single"))  # their messages are gone
    worker_processes.start_supervised(**env, COSMOS_REDIS_PREFIX=producer.keys.prefix)
    wait_for(lambda: producer.redis.exists(producer.keys.redis_run_id), timeout=30, what="the reconciler's look")
    assert producer.ledger.states(ids) == ["queued"] * len(ids)  # within the grace: nothing republished

    restartable_redis.stop(graceful=True)
    restartable_redis.start()
    restarted = time.monotonic()

    def all_sent():
        states = producer.ledger.states(ids)
        return states.count("sent") + states.count("delivered") == len(ids) or None

    wait_for(all_sent, timeout=40, interval=0.2, what="every queued job sent")
    assert time.monotonic() - restarted <= BOUND_S
