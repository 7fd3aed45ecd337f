"""Operator tooling over whole sets: tens of thousands of dead letters, paged, never capped."""

from __future__ import annotations

import json
import subprocess

import pytest

from ledger.schema import STEP
from ledger.stats import stats
from producers.producer import SmsProducer
from tests.support.processes import cosmos_cmd

TO = "033334445566770"


def dead_letters(producer: SmsProducer, count: int, status: str) -> list[str]:
    """`count` jobs dead with `status`, made through the ledger's own scripts in bounded steps."""
    ids = producer.send_bulk([{"to": TO, "sender": "F", "text": f"dead {i}"} for i in range(count)])
    ledger = producer.ledger
    for start in range(0, count, STEP):
        step = ids[start : start + STEP]
        assert {a.verdict for a in ledger.begin_many(step, ["w"] * len(step), count_delivery=False)} == {"go"}
        ledger.finish_many([ledger.finish_args(j, "w", "permanent", status=status, http=200) for j in step])
    return ids


@pytest.mark.parametrize("count", [3 * STEP + 7, pytest.param(20_000, marks=pytest.mark.long)])
def test_dead_requeue_by_reason_requeues_every_one_in_steps(settings_for, redis_client, base_env, count):
    producer = SmsProducer(settings_for())
    dead_letters(producer, count, "failed")
    dead_letters(producer, 5, "spam")
    before = stats(producer.ledger)
    assert before["dead_reasons"] == {"failed": count, "spam": 5}

    done = subprocess.run(
        cosmos_cmd("dead", "requeue", "--reason", "failed"), env=base_env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"requeued {count} job(s)"
    figures = stats(producer.ledger)
    assert figures["dead_reasons"] == {"spam": 5}
    assert figures["states"]["queued"] == count
    # Republished in chunks of 50, as they were first sent.
    assert figures["queue_depth"]["bulk"] == before["queue_depth"]["bulk"] + -(-count // 50)


def test_dead_list_streams_every_record_as_one_json_array(settings_for, redis_client, base_env):
    producer = SmsProducer(settings_for())
    dead_letters(producer, 2 * STEP + 3, "failed")

    done = subprocess.run(
        cosmos_cmd("dead", "list", "--json"), env=base_env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert len(records) == 2 * STEP + 3 and {r["dead_reason"] for r in records} == {"failed"}
