"""The command line as operators use it: one-line errors, exit codes, JSON shapes."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta, timezone

from tests.support.processes import ROOT, cosmos_cmd


def run(env, *args):
    return subprocess.run(cosmos_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_invalid_message_exits_1_with_one_line_starting_with_the_status(base_env):
    result = run(base_env, "send", "--to", "12345", "--from", "F", "--text", "hi")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("invalid_to: ")


def test_send_then_status_then_cancel(base_env):
    sent = run(base_env, "send", "--to", "033334445566770", "--from", "F", "--text", "hi")
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.strip()

    status = run(base_env, "status", job_id)
    assert status.returncode == 0
    assert json.loads(status.stdout)["state"] == "queued"

    assert run(base_env, "cancel", job_id).returncode == 0
    assert json.loads(run(base_env, "status", job_id).stdout)["state"] == "cancelled"
    assert run(base_env, "cancel", job_id).returncode == 1


def test_send_at_schedules_and_status_and_stats_show_it(base_env):
    base = ("send", "--to", "033334445566770", "--from", "F", "--text", "hi", "--at")
    refused = run(base_env, *base, "2030-01-01T09:00")
    assert refused.returncode == 1 and refused.stderr.startswith("invalid_json: send_at has no UTC offset")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    sent = run(base_env, *base, tomorrow.astimezone(timezone(timedelta(hours=1))).isoformat())
    assert sent.returncode == 0, sent.stderr
    record = json.loads(run(base_env, "status", sent.stdout.strip()).stdout)
    at = tomorrow.isoformat().replace("+00:00", ".000Z")
    assert (record["state"], record["send_at"], record["waiting_for"]) == ("queued", at, "send_at")
    figures = json.loads(run(base_env, "stats", "--json").stdout)
    assert figures["scheduled"] == {"waiting": 1, "next_at": at}
    assert figures["quiet_hours"] is None


def test_unknown_job_status_exits_1(base_env):
    result = run(base_env, "status", "nope")
    assert result.returncode == 1 and "unknown job" in result.stderr


def test_stats_json_has_the_contract_keys(base_env):
    result = run(base_env, "stats", "--json")
    figures = json.loads(result.stdout)
    assert {"states", "dead_reasons", "dead_letter_size", "total_price", "ambiguous_resends", "breaker"} <= set(figures)


def test_bad_usage_exits_2(base_env):
    assert run(base_env, "dead", "requeue").returncode == 2
    assert run(base_env, "send", "--to", "x").returncode == 2


def test_bad_setting_is_refused_naming_the_variable(base_env):
    result = run({**base_env, "COSMOS_MAX_ATTEMPTS": "zero"}, "stats")
    assert result.returncode == 2 and "COSMOS_MAX_ATTEMPTS" in result.stderr


def test_dead_list_and_held_list_print_json_arrays(base_env):
    for args in (("dead", "list", "--json"), ("held", "list", "--json"), ("suppression", "list", "--json")):
        result = run(base_env, *args)
        assert result.returncode == 0 and json.loads(result.stdout) == []


def test_send_with_redis_down_says_to_check_redis_url(base_env):
    from tests.support.ports import free_port

    env = {**base_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "COSMOS_ENQUEUE_TIMEOUT_S": "1"}
    out = subprocess.run(
        cosmos_cmd("send", "--to", "033334445566770", "--from", "F", "--text", "hi"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stderr.strip().endswith("(is Redis running? check REDIS_URL)")
    assert len(out.stderr.strip().splitlines()) == 1
