"""A begin or finish whose reply was lost, sent again by redis-py's retry, counts once.

The ledger's client reaches Redis through a proxy that lets the script run and cuts the connection
before its reply: redis-py sends the same command again on a new connection.
"""

from __future__ import annotations

import hashlib

from config.redis_client import redis_client
from ledger.scripts import script_source
from ledger.stats import stats
from ledger.store import Ledger
from tests.support.redis_proxy import reply_cutter


def test_a_begin_and_a_finish_repeated_after_a_lost_reply_count_once(producer, redis_server, settings_for):
    job_id = producer.send_sms("033334445566770", "F", "once")
    calls = {
        # The repeated begin reads the message from the record: its kept reply does not copy it.
        "begin": lambda ledger: (
            _message(ledger.begin(job_id, "w", count_delivery=True)) == ("go", "033334445566770", "F", "once")
        ),
        "finish": lambda ledger: (
            ledger.finish(job_id, "w", "transient", status="internal_error", http=500)[0] == "retry"
        ),
    }
    for name, call in calls.items():
        source = script_source(name)
        producer.redis.script_load(source)
        marker = hashlib.sha1(source.encode()).hexdigest().encode()
        with reply_cutter(redis_server.port, (marker,), cuts=1) as proxy:
            settings = settings_for(REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
            assert call(Ledger(redis_client(settings, "worker"), settings))
            assert proxy.cut == 1  # its reply was lost, and redis-py sent it again

    record = producer.get_status(job_id)
    figures = stats(producer.ledger)
    assert (record["attempts"], figures["attempts"], figures["transient_failures"]) == (1, 1, 1)


def _message(attempt) -> tuple[str, str, str, str]:
    return attempt.verdict, attempt.to, attempt.sender, attempt.text
