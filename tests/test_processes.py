"""Worker heartbeats as the CLI, the console and /metrics read them (real Redis; the CLI as a subprocess)."""

from __future__ import annotations

import json
import subprocess

from config.keys import Keys
from ledger.processes import FORGET_AFTER_S, Heartbeats
from tests.support.polling import wait_for
from tests.support.processes import cosmos_cmd

INFO = {"host": "h1", "pid": 41, "lanes": ["single"], "threads_busy": 1, "threads_total": 8}


def test_a_process_is_alive_then_lost_after_three_missed_beats_and_gone_when_it_leaves(redis_client, prefix):
    beats = Heartbeats(redis_client, Keys(prefix))
    beats.beat("h1:41", INFO, interval_s=0.2)
    [seen] = beats.seen()
    assert (seen["host"], seen["pid"], seen["lanes"], seen["state"]) == ("h1", 41, ["single"], "alive")
    assert seen["last_seen"].endswith("Z") and seen["last_seen_s_ago"] < 1
    wait_for(lambda: beats.seen()[0]["state"] == "lost", timeout=5, what="the silent process to show as lost")
    assert beats.seen()[0]["last_seen_s_ago"] >= 0.6
    beats.leave("h1:41")
    assert beats.seen() == []


def test_heartbeats_are_bounded_a_silent_process_is_forgotten(redis_client, prefix):
    keys = Keys(prefix)
    beats = Heartbeats(redis_client, keys)
    beats.beat("old:1", INFO, interval_s=5)
    assert 0 < redis_client.ttl(keys.process("old:1")) <= FORGET_AFTER_S
    redis_client.zadd(keys.processes, {"old:1": 1.0})  # its last beat, long ago
    beats.beat("new:2", {**INFO, "host": "new", "pid": 2}, interval_s=5)
    assert redis_client.zrange(keys.processes, 0, -1) == ["new:2"]
    assert [p["id"] for p in beats.seen()] == ["new:2"]


def test_processes_command_prints_the_contract_fields(redis_client, prefix, base_env):
    Heartbeats(redis_client, Keys(prefix)).beat("h1:41", INFO, interval_s=5)
    out = subprocess.run(cosmos_cmd("processes", "--json"), env=base_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [p] = json.loads(out.stdout)
    assert {"host", "pid", "lanes", "last_seen", "state"} <= set(p) and p["state"] == "alive"
    text = subprocess.run(cosmos_cmd("processes"), env=base_env, capture_output=True, text=True, timeout=60)
    assert "h1:41" in text.stdout and "alive" in text.stdout and "s ago" in text.stdout
    version = subprocess.run(cosmos_cmd("--version"), env=base_env, capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("cosmos-sms ") and version.stdout.strip()[-1].isdigit()


def test_a_real_worker_command_prints_one_banner_beats_per_process_and_leaves_on_sigterm(
    worker_processes, redis_client, prefix
):
    handle = worker_processes.start_supervised(concurrency=2, COSMOS_HEARTBEAT_S="1")
    beats = Heartbeats(redis_client, Keys(prefix))
    wait_for(lambda: len(beats.seen()) == 2, timeout=30, what="both processes to beat")
    seen = beats.seen()
    assert sorted(tuple(p["lanes"]) for p in seen) == [("bulk",), ("single",)]
    assert {p["state"] for p in seen} == {"alive"} and all(p["version"] and p["started_at"] for p in seen)
    log = handle.log()
    assert log.count("cosmos-sms worker ") == 1 and "route http" in log and "single lane 1 process(es)" in log
    assert "[queues]" not in log  # no Celery banner per process
    assert log.count("Redis persistence is off") == 1  # the test's Redis keeps nothing; said once, not per process
    handle.terminate()
    assert beats.seen() == []  # a clean stop leaves the list at once
