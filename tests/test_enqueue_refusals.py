"""A Redis that refuses writes (out of memory, too few replicas) is EnqueueFailed to the application."""

from __future__ import annotations

import pytest

from config.errors import EnqueueFailed
from producers.producer import SmsProducer
from tests.support.redis_server import start_private_redis

TO = "033334445566770"


@pytest.fixture(scope="module")
def refusing_redis(tmp_path_factory):
    server = start_private_redis(tmp_path_factory.mktemp("refusing"))
    yield server
    server.stop(graceful=False)


@pytest.mark.parametrize(
    ("setting", "value", "what"),
    [("maxmemory", "1", "maxmemory"), ("min-replicas-to-write", "1", "NOREPLICAS")],
)
def test_a_refused_write_is_enqueue_failed(refusing_redis, settings_for, setting, value, what):
    client = refusing_redis.client()
    client.config_set(setting, value)
    try:
        producer = SmsProducer(settings_for(REDIS_URL=refusing_redis.url, COSMOS_ENQUEUE_TIMEOUT_S="0.3"))
        with pytest.raises(EnqueueFailed, match=what) as single:
            producer.send_sms(TO, "Shop", "hello", idempotency_key="K")
        with pytest.raises(EnqueueFailed, match=what) as bulk:
            producer.send_bulk([{"to": TO, "sender": "Shop", "text": "hi"}], batch_id="B")
        assert single.value.job_ids == [] and bulk.value.job_ids == []
    finally:
        client.config_set(setting, "0")
