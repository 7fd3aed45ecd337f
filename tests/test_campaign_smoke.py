"""The campaign-scale benchmark's scenario (2,000 messages in CI, 10,000 in the `long` run): every message
sent, the failing single retried, memory and latency figures produced. Speed goals stay in the benchmark itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.processes import ROOT


@pytest.mark.bench
@pytest.mark.parametrize("count", [2_000, pytest.param(10_000, marks=pytest.mark.long)])
def test_campaign_scenario_drains_with_every_figure(count):
    done = subprocess.run(
        [sys.executable, "-m", "bench.campaign", "--count", str(count), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])

    assert figures["count"] == count
    assert figures["fail_once"]["state"] == "sent"
    assert figures["fail_once"]["history"] == ["internal_error", "ok"]
    assert figures["single_enqueue_to_sent_ms"]["sent"] == figures["single_send_sms_ms"]["calls"] > 0
    assert figures["redis_ping_ms"]["samples"] > 0
    assert figures["memory_sent"]["per_record_bytes"] > 0
