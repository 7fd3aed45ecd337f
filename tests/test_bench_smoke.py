"""Smoke run of the benchmark: it starts its stack, measures every figure, stops everything, prints JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RATES = (
    "bulk_msgs_per_s",
    "single_msgs_per_s",
    "bulk_enqueue_msgs_per_s",
    "single_enqueue_msgs_per_s",
    "baseline_msgs_per_s",
    "baseline_enqueue_msgs_per_s",
    "bulk_vs_baseline",
    "single_vs_baseline",
)
COSTS = (
    "worker_cpu_s_per_msg",
    "sandbox_cpu_s_per_msg",
    "baseline_worker_cpu_s_per_msg",
    "worker_peak_rss_mb",
    "baseline_peak_rss_mb",
    "redis_bytes_per_record",
    "redis_job_hash_bytes",
)


@pytest.mark.bench
@pytest.mark.timeout(360)
def test_quick_benchmark_reports_every_figure_as_a_positive_number():
    # Given nothing running beforehand; when the quick benchmark runs to the end:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    # Then it succeeded and reported every figure (speed goals are not tests: only that each was measured).
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["machine"]["nproc"] >= 1 and report["machine"]["python"]
    assert report["redis_bytes_per_record"] > 0
    [scenario] = report["scenarios"]
    assert scenario["latency_ms"] == 0
    for name in RATES + COSTS:
        assert scenario[name] > 0, name
    light = scenario["light_load"]
    assert light["messages"] > 0
    assert 0 < light["p50_ms"] <= light["p95_ms"] <= light["p99_ms"]
    assert scenario["bulk_failed"] == {} and scenario["single_failed"] == {}
    assert "sandbox latency 0 ms" in done.stderr  # the table went to stderr beside the JSON
