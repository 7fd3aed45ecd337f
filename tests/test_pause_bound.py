"""An account pause stops every request but the probes, leases taken before it included.

COSMOS answers 401 for a window in the middle of a rate-limited load of singles and bulk. After the
ledger records the first 401, the sandbox may see one probe per probe interval, plus the requests
already past their last check at that moment. Those arrive within IN_FLIGHT_S of the record on one
host, so the bound counts the 401s the sandbox logged later than that: at most window / interval + 1.
"""

from __future__ import annotations

import json
import math

import pytest
import requests

from tests.support.polling import wait_for

TO = "099911122233344"
IN_FLIGHT_S = 0.5
"""A request past its last check when the pause was recorded reaches the sandbox within this (loopback)."""


def _window_over(sandbox) -> bool:
    return requests.get(f"{sandbox.base_url}/_sandbox/unauthorized", timeout=5).json()["remaining_s"] <= 0


def _requests_after_pause(producer, workers, sandbox, *, window_s: float, probe_s: float) -> tuple[int, int]:
    workers.start(COSMOS_RATE_LIMIT="20", COSMOS_PAUSE_PROBE_INTERVAL_S=str(probe_s))
    for n in range(120):
        producer.send_sms(to=TO, sender="P", text=f"single {n}")
    producer.send_bulk([{"to": TO, "sender": "P", "text": f"bulk {n}"} for n in range(120)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 20, timeout=30, what="sending to be under way")

    sandbox.unauthorized(window_s)
    pause = wait_for(lambda: producer.ledger.pause_state().get("account"), timeout=10, what="the pause")
    paused_at = float(json.loads(pause)["ts"])
    wait_for(lambda: _window_over(sandbox), timeout=window_s + 10, interval=0.2, what="the window to end")

    refused = [r for r in sandbox.requests(limit=1000) if r["status"] == "unauthorized"]
    late = [r for r in refused if r["at"] > paused_at + IN_FLIGHT_S]
    bound = math.floor(window_s / probe_s) + 1
    return len(late), bound


def test_an_account_pause_lets_only_probes_through(producer, workers, sandbox):
    late, bound = _requests_after_pause(producer, workers, sandbox, window_s=5, probe_s=1)
    assert late <= bound, f"{late} requests reached COSMOS during the pause; one probe per interval allows {bound}"


@pytest.mark.long
def test_an_account_pause_of_twenty_seconds_lets_only_probes_through(producer, workers, sandbox):
    late, bound = _requests_after_pause(producer, workers, sandbox, window_s=20, probe_s=5)
    assert late <= bound, f"{late} requests reached COSMOS during the pause; one probe per interval allows {bound}"
