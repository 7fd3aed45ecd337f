"""What the worker refuses or warns about at start, and what Celery may show of its configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from config.celery import celery_config
from config.keys import Keys
from config.settings import SettingsError, load_settings
from ledger.outbox import single_message
from tests.conftest import TEST_API_SECRET
from worker.startup_checks import check_redis_safety


def test_celery_configuration_never_holds_the_api_secret(settings):
    assert TEST_API_SECRET not in json.dumps(celery_config(settings), default=str)


def test_broker_message_carries_the_job_id_only():
    _, message = single_message(Keys("p"), "single", "job-1")
    decoded = json.loads(message)
    assert decoded["headers"]["argsrepr"] == "['job-1']"
    assert "033334445566770" not in message and "text" not in decoded["headers"]


def test_a_lease_longer_than_the_visibility_timeout_is_refused():
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None, COSMOS_READ_TIMEOUT_S="300", COSMOS_VISIBILITY_TIMEOUT_S="600")
    assert "COSMOS_VISIBILITY_TIMEOUT_S" in str(err.value)


def test_missing_credentials_refuse_the_worker(settings):
    with pytest.raises(SettingsError) as err:
        settings.model_copy(update={"api_secret": None}).require_credentials()
    assert "COSMOS_API_SECRET" in str(err.value)


def test_redis_without_persistence_or_with_eviction_is_warned_about(redis_server):
    client = redis_server.client()
    # The test server runs without AOF or RDB and with noeviction.
    warnings = check_redis_safety(client)
    assert any("persistence is off" in w for w in warnings)
    assert not any("maxmemory-policy" in w for w in warnings)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        assert any("maxmemory-policy" in w for w in check_redis_safety(client))
    finally:
        client.config_set("maxmemory-policy", "noeviction")


def test_a_retried_enqueue_never_resets_a_record_it_already_wrote(settings, redis_client):
    from ledger.store import Ledger, NewJob

    ledger = Ledger(redis_client, settings)
    job = NewJob("job-r", "single", "033334445566770", "F", "x", None, False, None, "fp", 60)
    assert ledger.enqueue([job]) == [("job-r", True)]
    assert ledger.begin("job-r", "owner", count_delivery=True).verdict == "go"

    assert ledger.enqueue([job], [(1, 1, "some-list", "message")]) == [("job-r", False)]
    record = ledger.get("job-r")
    assert record is not None and record["state"] == "sending"
    assert redis_client.llen("some-list") == 0


def test_importing_any_module_with_an_invalid_setting_reads_nothing_and_exits_nothing():
    # Settings are read by entry points, never at import: a bad value must not stop an import.
    modules = "worker.tasks, worker.retry_policy, worker.factory, producers, receipts.app, console.app, cli.main"
    env = {**os.environ, "COSMOS_MAX_ATTEMPTS": "zero", "REDIS_URL": "not-a-url"}
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}; print('imported')"], env=env, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout.strip()) == (0, "imported"), result.stderr


def test_the_old_name_of_the_reconciler_interval_is_still_read_with_a_one_line_warning(capsys):
    settings = load_settings(_env_file=None, COSMOS_SCHEDULER_INTERVAL_S="0.3")
    assert settings.reconciler_interval_s == 0.3
    [warning] = capsys.readouterr().err.splitlines()
    assert "COSMOS_RECONCILER_INTERVAL_S" in warning

    both = load_settings(_env_file=None, COSMOS_SCHEDULER_INTERVAL_S="0.3", COSMOS_RECONCILER_INTERVAL_S="0.7")
    assert both.reconciler_interval_s == 0.7
    capsys.readouterr()
    assert load_settings(_env_file=None, COSMOS_RECONCILER_INTERVAL_S="0.7").reconciler_interval_s == 0.7
    assert capsys.readouterr().err == ""
