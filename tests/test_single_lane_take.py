"""Single-lane grouping loses nothing when Redis's reply to the take is lost.

A worker with free send threads takes the single messages waiting behind its task. Its Redis
connection goes through a proxy that lets the take run and cuts the connection before the reply:
redis-py sends the command again on a new connection. Every job must still be sent, once, well
before the lost-message rule (COSMOS_REQUEUE_GRACE_S, 60 s here) could have found a lost one.
"""

from __future__ import annotations

import hashlib

from ledger.scripts import SCRIPT_NAMES, script_source
from tests.support.polling import wait_for
from tests.support.redis_proxy import reply_cutter

TO = "033334445566770"
JOBS = 150


def _take_markers(redis_client) -> tuple[bytes, ...]:
    """The bytes of a take: the script's call by SHA (loaded first, so the call itself is cut)."""
    markers = [b"$4\r\nRPOP\r\n"]  # a take written as a plain RPOP
    if "take" in SCRIPT_NAMES:
        source = script_source("take")
        redis_client.script_load(source)
        markers.append(hashlib.sha1(source.encode()).hexdigest().encode())
    return tuple(markers)


def test_a_lost_reply_while_taking_waiting_singles_loses_no_message(
    producer, workers, sandbox, redis_server, redis_client
):
    ids = [producer.send_sms(to=TO, sender="F", text=f"code {n}") for n in range(JOBS)]
    with reply_cutter(redis_server.port, _take_markers(redis_client), cuts=3) as proxy:
        workers.start(REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0", COSMOS_REQUEUE_GRACE_S="60")

        def all_sent():
            states = producer.ledger.states(ids)
            return states.count("sent") + states.count("delivered") == JOBS or None

        wait_for(all_sent, timeout=40, interval=0.5, what="every job to be sent")
        assert proxy.cut >= 1  # a reply was lost: the test saw what it is about

    counts = {c["text"]: c["count"] for c in sandbox.accepted()["counts"]}
    assert sorted(set(counts.values())) == [1] and len(counts) == JOBS
