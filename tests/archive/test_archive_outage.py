"""The archive down under load: sending goes on, the backlog waits in Redis and is shown, nothing is lost."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from archive.engine import create_archive_engine
from archive.tables import messages
from ledger.stats import stats
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.postgres import start_private_postgres

TO = "031110000000909"


@pytest.fixture
def durable_postgres():
    """A PostgreSQL of this test's own, with fsync on: it is stopped and started again mid-test."""
    server = start_private_postgres(fsync=True)
    if server is None:
        pytest.skip("no PostgreSQL server binaries")
    yield server
    try:
        server.stop("immediate")
    except RuntimeError:
        pass  # the test failed while its outage had the server stopped
    server.remove()


def archived_rows(url: str, prefix: str) -> int:
    engine = create_archive_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(messages.c.prefix == prefix)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.chaos
@pytest.mark.parametrize("outage_s", [pytest.param(10, id="10s"), pytest.param(60, id="60s", marks=pytest.mark.long)])
def test_an_archive_outage_under_load_loses_nothing_and_catches_up(
    base_env, sandbox, workers, settings_for, durable_postgres, outage_s
):
    url = durable_postgres.create_database("outage")
    prefix = base_env["COSMOS_REDIS_PREFIX"]
    env = {**base_env, "COSMOS_API_URL": sandbox.api_url, "COSMOS_ARCHIVE_URL": url, "COSMOS_RETENTION_S": "1"}
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url))
    workers.start(**env)
    jobs: list[str] = []

    def send_round(n: int = 20) -> list[str]:
        """A round of messages, waited for until sent: the load is paced by the pipeline itself."""
        ids = producer.send_bulk([{"to": TO, "sender": "F", "text": f"m{len(jobs) + i}"} for i in range(n)])
        jobs.extend(ids)
        wait_for(
            lambda: all((r := producer.get_status(j)) is None or r["state"] == "sent" for j in ids),
            timeout=30,
            what="a round sent",
        )
        return ids

    send_round()
    durable_postgres.stop("fast")
    outage_ends = time.monotonic() + outage_s
    during = 0
    while time.monotonic() < outage_ends:
        during += len(send_round())  # sending goes on while the archive is down
    archive = stats(producer.ledger)["archive"]
    assert archive["backlog"] > 0 and archive["last_error"], archive
    assert archive["oldest_s"] > 0
    assert during >= 20
    assert all(producer.get_status(j) is not None for j in jobs[-during:])  # they wait in Redis

    durable_postgres.start()
    wait_for(
        lambda: all(producer.get_status(j) is None for j in jobs),
        timeout=60,
        what="the backlog archived and swept",
    )
    assert archived_rows(url, prefix) == len(jobs)
    figures = stats(producer.ledger)["archive"]
    assert (figures["backlog"], figures["last_error"]) == (0, None)
