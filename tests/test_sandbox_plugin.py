"""The packaged sandbox fixtures: a reused process is as good as a fresh one; start-up options get their own."""

from __future__ import annotations

import requests

from sandbox.faults import FaultSettings
from sandbox.pytest_plugin import SandboxPool

TO = "033334445566770"
TEST_BODY = {"to": TO, "from": "F", "text": "hello"}


def _send(handle, credentials) -> requests.Response:
    return requests.post(handle.sms_url, json={**TEST_BODY, **credentials}, timeout=10)


def test_a_reused_sandbox_is_as_if_just_started(sandbox_pool: SandboxPool, base_env):
    credentials = {"api_key": base_env["COSMOS_API_KEY"], "api_secret": base_env["COSMOS_API_SECRET"]}
    first = sandbox_pool.take(("--price", "0.5", "--latency-ms", "1"))
    assert first.faults()["price"] == 0.5
    assert _send(first, credentials).json()["status"] == "ok"
    first.script(TO, "timeout")
    first.outage(600)
    sandbox_pool.give_back()

    again = sandbox_pool.take()

    assert again.proc.pid == first.proc.pid  # fault options did not cost a process
    assert again.faults() == FaultSettings().as_dict()
    assert again.stats()["requests"] == 0 and again.accepted()["counts"] == []
    assert again._get("script")["scripts"] == {} and again._get("outage")["remaining_s"] == 0
    assert _send(again, credentials).json()["status"] == "ok"
    sandbox_pool.give_back()


def test_start_up_options_get_a_process_of_their_own_kept_for_the_module(sandbox_pool: SandboxPool):
    seeded = sandbox_pool.take(("--seed", "7"))
    default = sandbox_pool.take()
    assert seeded.proc.pid != default.proc.pid
    sandbox_pool.give_back()

    assert sandbox_pool.take(("--seed", "7")).proc.pid == seeded.proc.pid
    sandbox_pool.give_back()
