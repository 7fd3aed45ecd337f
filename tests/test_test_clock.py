"""The ledger's test clock: COSMOS_TEST_CLOCK_OFFSET_S moves Redis TIME for every script, only in tests."""

from __future__ import annotations

import time

import pytest

from config.errors import SettingsError
from config.settings import load_settings
from producers.producer import SmsProducer

DAY = 86400.0


def test_the_offset_is_refused_outside_tests(monkeypatch):
    monkeypatch.setenv("COSMOS_TEST_CLOCK_OFFSET_S", "3600")
    monkeypatch.delenv("COSMOS_TESTING", raising=False)
    with pytest.raises(SettingsError, match="^COSMOS_TEST_CLOCK_OFFSET_S:.*COSMOS_TESTING=1"):
        load_settings(_env_file=None)
    monkeypatch.setenv("COSMOS_TESTING", "1")
    assert load_settings(_env_file=None).clock_offset_s == 3600.0


def test_scripts_and_python_read_the_same_moved_clock(settings_for, redis_client):
    producer = SmsProducer(settings_for(COSMOS_TEST_CLOCK_OFFSET_S=str(DAY)))
    before = time.time()
    job_id = producer.send_sms(to="033334445566770", sender="F", text="hi", expires_in=60)
    record = producer.ledger.get(job_id)
    assert record is not None
    created = float(producer.ledger.redis.hget(producer.ledger.keys.job(job_id), "created_ts") or 0)
    assert before + DAY - 1 <= created <= time.time() + DAY + 1
    assert abs(producer.ledger.now() - created) < 5
    # An unmoved ledger sees the job's deadline a day away, not passed.
    assert SmsProducer(settings_for()).ledger.now() < created - DAY + 5
