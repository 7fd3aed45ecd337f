"""`pause`, `resume`, `suppression add`, `hash-password` and `console` as operators run them."""

from __future__ import annotations

import json
import subprocess

from console.users import check_password, parse_users
from tests.support.processes import ROOT, cosmos_cmd


def run(env, *args, stdin: str | None = None):
    return subprocess.run(cosmos_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, input=stdin)


def test_pause_and_resume_a_lane_and_all_sending(base_env, redis_client, prefix):
    assert run(base_env, "pause", "--lane", "bulk", "--reason", "campaign review").returncode == 0
    pause = json.loads(redis_client.hget(f"{prefix}:pause", "op:bulk"))
    assert pause["reason"] == "campaign review" and pause["by"].startswith("cli:")
    stats = json.loads(run(base_env, "stats", "--json").stdout)
    assert stats["paused"]["kind"] == "operator" and stats["paused"]["lanes"] == ["bulk"]
    assert run(base_env, "pause").returncode == 0 and redis_client.hexists(f"{prefix}:pause", "op:all")
    assert run(base_env, "resume", "--lane", "bulk").returncode == 0
    assert run(base_env, "resume").returncode == 0
    assert redis_client.hgetall(f"{prefix}:pause") == {}
    actions = [e["action"] for _, e in redis_client.xrange(f"{prefix}:audit")]
    assert actions == ["pause", "pause", "resume", "resume"]


def test_pause_refuses_an_unknown_lane(base_env, redis_client, prefix):
    result = run(base_env, "pause", "--lane", "sms")
    assert result.returncode == 2 and "--lane" in result.stderr
    assert redis_client.hgetall(f"{prefix}:pause") == {}


def test_suppression_add(base_env, redis_client, prefix):
    assert run(base_env, "suppression", "add", "033334445566770", "033334445566771").returncode == 0
    assert redis_client.smembers(f"{prefix}:suppressed") == {"033334445566770", "033334445566771"}
    bad = run(base_env, "suppression", "add", "12345")
    assert bad.returncode == 2 and "0 followed by 14 digits" in bad.stderr
    assert redis_client.scard(f"{prefix}:suppressed") == 2


def test_suppression_remove_is_checked_and_audited_as_the_console_does(base_env, redis_client, prefix):
    redis_client.sadd(f"{prefix}:suppressed", "033334445566770", "033334445566771")
    bad = run(base_env, "suppression", "remove", "033334445566770", "12345")
    assert bad.returncode == 2 and "12345: must be 0 followed by 14 digits" in bad.stderr
    assert redis_client.scard(f"{prefix}:suppressed") == 2  # nothing changed
    assert run(base_env, "suppression", "remove", "033334445566770").returncode == 0
    assert redis_client.smembers(f"{prefix}:suppressed") == {"033334445566771"}
    entries = redis_client.xrange(f"{prefix}:audit")
    assert [(f["action"], f["target"], f["count"]) for _, f in entries] == [
        ("suppression remove", "033334445566770", "1")
    ]


def test_hash_password_reads_stdin_and_prints_a_shell_safe_hash(base_env):
    result = run(base_env, "hash-password", stdin="s3cret pass\n")
    assert result.returncode == 0
    encoded = result.stdout.strip()
    assert encoded and all(c.isalnum() or c in "-_" for c in encoded)  # no $ , = : or spaces
    users = parse_users(f"ops:operator:{encoded}")
    assert check_password(users, "ops", "s3cret pass") is not None
    assert check_password(users, "ops", "s3cret") is None
    assert run(base_env, "hash-password", stdin="").returncode == 1


def test_console_refuses_to_start_without_users_in_one_line(base_env):
    result = run(base_env, "console")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: COSMOS_CONSOLE_USERS is not set: the console refuses to start without users"
    bad = run({**base_env, "COSMOS_CONSOLE_USERS": "bob:admin:abc"}, "console")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "role" in bad.stderr


def test_suppression_keeps_each_reason_and_remove_lifts_an_opt_out_only_with_force(
    base_env, settings_for, redis_client, prefix
):
    from ledger.store import Ledger
    from producers.producer import SmsProducer

    ledger: Ledger = SmsProducer(settings_for()).ledger
    opted, both = "033334445566780", "033334445566781"
    ledger.record_inbound(opted, "COSMOS", "STOP", "opt_out")
    ledger.record_inbound(both, "COSMOS", "STOP", "opt_out")
    ledger.suppress([both])

    shown = json.loads(run(base_env, "suppression", "show", both, "--json").stdout)
    assert shown["suppressed"] is True
    assert [r["reason"] for r in shown["reasons"]] == ["operator", "opt_out"]
    assert all(r["since"].endswith("Z") for r in shown["reasons"])

    removed = run(base_env, "suppression", "remove", opted, both)
    assert removed.returncode == 0 and "removed 0 number(s)" in removed.stdout
    assert "2 number(s) stay suppressed" in removed.stderr
    shown = json.loads(run(base_env, "suppression", "show", both, "--json").stdout)
    assert [r["reason"] for r in shown["reasons"]] == ["opt_out"] and shown["suppressed"] is True
    assert sorted(json.loads(run(base_env, "suppression", "list", "--json").stdout)) == [opted, both]

    assert "removed 2 number(s)" in run(base_env, "suppression", "remove", "--force", opted, both).stdout
    assert json.loads(run(base_env, "suppression", "list", "--json").stdout) == []
    gone = json.loads(run(base_env, "suppression", "show", opted, "--json").stdout)
    assert gone == {"number": opted, "suppressed": False, "reasons": []}
    audited = [f["action"] for _, f in redis_client.xrange(f"{prefix}:audit")]
    assert audited == ["suppression remove", "suppression remove --force"]
    assert "not suppressed" in run(base_env, "suppression", "show", opted).stdout
