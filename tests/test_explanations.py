"""Every dead reason and state explained where it is shown: `status`, `dead list` (and the console)."""

from __future__ import annotations

import json
import subprocess

from cosmos_api.outcomes import PERMANENT_STATUSES
from ledger.explanations import DEAD_REASONS, STATES, dead_reason
from ledger.schema import DEAD_REASONS_OURS
from ledger.schema import STATES as LEDGER_STATES
from producers.producer import SmsProducer
from tests.support.processes import cosmos_cmd

TO = "033334445566770"


def test_every_reason_and_state_the_ledger_can_give_is_explained():
    assert set(PERMANENT_STATUSES) | set(DEAD_REASONS_OURS) <= set(DEAD_REASONS)
    assert set(LEDGER_STATES) == set(STATES)
    for reason in ("failed", "spam", "blacklist"):
        assert DEAD_REASONS[reason].requeue.startswith("no")
    assert DEAD_REASONS["retries_exhausted"].requeue.startswith("yes")
    assert "vendor status 0x45" in dead_reason("smpp_0x45").means  # type: ignore[union-attr]


def test_status_and_dead_list_explain_and_an_unknown_reason_is_refused(settings, redis_client, base_env):
    producer = SmsProducer(settings)
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    assert producer.ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    producer.ledger.finish(job_id, "w1", "permanent", status="spam", http=400, latency_ms=5, error="spam")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cosmos_cmd(*args), env=base_env, capture_output=True, text=True, timeout=60)

    status = json.loads(run("status", job_id).stdout)
    assert status["explained"]["dead_reason"].startswith("COSMOS blocked the message")
    assert "Requeue: no, unless something changes" in status["explained"]["dead_reason"]
    assert [e["event"] for e in status["timeline"]][-1] == "dead"
    listed = run("dead", "list")
    assert job_id in listed.stdout and "spam: COSMOS blocked the message" in listed.stdout
    [record] = json.loads(run("dead", "list", "--json", "--reason", "spam").stdout)
    assert record["explained"]["state"].startswith("It will not be sent")
    refused = run("dead", "list", "--reason", "spma")
    assert refused.returncode == 2 and "unknown dead reason 'spma'" in refused.stderr and "spam" in refused.stderr
