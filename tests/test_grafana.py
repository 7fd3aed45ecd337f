"""Metrics Grafana can chart, and the shipped dashboard and alert rules checked by promtool.

promtool comes from Debian's `prometheus` package, unpacked into .cache/promtool (no server runs).
The metric names the dashboard and the rules use must all appear in a real /metrics scrape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ledger.processes import Heartbeats
from producers.producer import SmsProducer
from receipts.app import create_app
from tests.support.processes import ROOT
from tests.support.promtool import promtool

DASHBOARD = ROOT / "deploy" / "grafana" / "cosmos-sms.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TO = "033334445566770"


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def alert_queries() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def sample_values(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def scrape(settings_for, redis_client):
    """A GET /metrics of the receiver app on the test's Redis: (text, producer)."""
    settings = settings_for(COSMOS_RETENTION_S="60")
    client = TestClient(create_app(settings, redis_client))

    def get(query: str = "") -> str:
        with client:
            response = client.get(f"/metrics{query}")
        assert response.status_code == 200, response.text
        return response.text

    return get, SmsProducer(settings)


def deliver(producer: SmsProducer) -> str:
    ledger = producer.ledger
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "accepted", status="success", http=200, latency_ms=30, message_id="m1", price=0.05)
    ledger.apply_receipt(job_id, to=TO, status="delivered", message_id="m1", price=0.05, timestamp="t")
    return job_id


def test_outcome_counters_only_grow_the_sweep_lowers_the_gauge_alone(scrape, redis_client):
    get, producer = scrape
    deliver(producer)
    before = sample_values(get())
    assert before[("cosmos_outcomes_total", (("lane", "single"), ("outcome", "delivered")))] == 1
    assert before[("cosmos_outcomes_total", (("lane", "single"), ("outcome", "sent")))] == 1
    assert before[("cosmos_attempt_outcomes_total", (("outcome", "accepted"), ("route", "http")))] == 1
    assert before[("cosmos_attempt_latency_seconds_count", ())] == 1
    assert before[("cosmos_jobs", (("state", "delivered"),))] == 1
    redis_client.zadd(producer.keys.retention, {k: 0 for k in redis_client.zrange(producer.keys.retention, 0, -1)})
    assert producer.ledger.sweep() == 1
    after = sample_values(get())
    assert after[("cosmos_jobs", (("state", "delivered"),))] == 0
    assert after[("cosmos_outcomes_total", (("lane", "single"), ("outcome", "delivered")))] == 1


def test_pauses_have_bounded_labels_and_no_created_series(scrape, redis_client):
    get, producer = scrape
    redis_client.hset(producer.keys.pause, "op:bulk", json.dumps({"reason": "free text here", "by": "ana", "ts": 1}))
    text = get()
    values = sample_values(text)
    assert values[("cosmos_sending_paused", (("kind", "operator"), ("lane", "bulk")))] == 1
    assert values[("cosmos_sending_paused", (("kind", "operator"), ("lane", "single")))] == 0
    assert values[("cosmos_sending_paused_seconds", (("kind", "operator"), ("lane", "bulk")))] > 1e9
    assert "free text here" not in text and "_created" not in text


def test_worker_figures_come_from_heartbeats_and_each_scope_scrapes_its_own(scrape, redis_client):
    get, producer = scrape
    info = {"host": "h", "pid": 1, "lanes": ["bulk"], "threads_busy": 3, "threads_total": 8}
    Heartbeats(redis_client, producer.keys).beat("h:1", {**info, "send_threads_busy": 5, "send_threads_total": 50}, 5)
    values = sample_values(get())
    assert values[("cosmos_worker_processes", (("state", "alive"),))] == 1
    assert values[("cosmos_worker_threads_busy", (("kind", "send"),))] == 5
    assert values[("cosmos_worker_threads", (("kind", "task"),))] == 8
    ledger_only, process_only = get("?scope=ledger"), get("?scope=process")
    assert "cosmos_worker_processes" in ledger_only and "cosmos_receiver_responses" not in ledger_only
    assert "cosmos_receiver_responses" in process_only and "cosmos_jobs" not in process_only


def test_every_metric_the_dashboard_and_the_alerts_use_is_in_a_real_scrape(scrape):
    get, producer = scrape
    deliver(producer)
    scraped = {name for name, _ in sample_values(get())}
    used = {name for expr in dashboard_queries() + alert_queries() for name in re.findall(r"\bcosmos_\w+", expr)}
    assert used and used <= scraped, sorted(used - scraped)


def test_dashboard_queries_and_alert_rules_pass_promtool_check(tmp_path: Path):
    # Grafana runs panel queries itself; wrapped as recording rules, promtool parses every one.
    rules = {
        "groups": [
            {
                "name": "dashboard-panels",
                "rules": [{"record": f"cosmos_panel:query{i}", "expr": e} for i, e in enumerate(dashboard_queries())],
            }
        ]
    }
    panels = tmp_path / "panels.yml"
    panels.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(panels), str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("SUCCESS") == 2


def test_workers_down_paused_for_long_and_archive_behind_fire_on_synthetic_series():
    tested = promtool("test", "rules", "alerts.test.yml", cwd=ALERTS.parent)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    cases = yaml.safe_load((ALERTS.parent / "alerts.test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert {
        "CosmosWorkersDown",
        "CosmosSendingPausedForLong",
        "CosmosArchiveBehind",
        "CosmosBudgetAt80Percent",
    } <= fired
