"""The reconciler ends 1,000 waiting jobs past their deadline in short claims, never one long one.

Redis's own SLOWLOG times each claim a real worker's reconciler makes (the worker consumes no lane, so
only the reconciler touches the jobs). The bound is the house rule's maximum, 20 ms: the claim itself
is ~4 ms; the rest is room for a machine shared with other test runs.
"""

from __future__ import annotations

import hashlib

from ledger.scripts import script_source
from tests.support.polling import wait_for

TO = "033334445566770"
JOBS = 1000
MAX_HOLD_MS = 20


def test_expiring_a_thousand_waiting_jobs_holds_redis_briefly(producer, workers, redis_client):
    ids = producer.send_bulk([{"to": TO, "sender": "F", "text": f"late {n}", "expires_in": 1} for n in range(JOBS)])
    deadline = float(producer.redis.hget(producer.keys.job(ids[-1]), "expires_ts"))
    wait_for(lambda: producer.redis.time()[0] > deadline, timeout=10, what="the deadlines to pass")
    redis_client.config_set("slowlog-log-slower-than", 1000)
    redis_client.slowlog_reset()
    try:
        workers.start(lane="nothing")  # its reconciler only
        wait_for(lambda: producer.ledger.states(ids).count("expired") == JOBS, timeout=60, what="every job to expire")
        claim = hashlib.sha1(script_source("claim").encode()).hexdigest()
        holds = [e["duration"] / 1000 for e in redis_client.slowlog_get(10_000) if claim in str(e["command"])]
    finally:
        redis_client.config_set("slowlog-log-slower-than", 10000)
    assert max(holds, default=0) <= MAX_HOLD_MS, sorted(holds)[-5:]
