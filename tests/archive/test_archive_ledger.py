"""The ledger's side of archiving, called directly against a real Redis and a real archive."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from archive.engine import create_archive_engine
from archive.erasure import forget_in_redis
from archive.opening import open_archive
from archive.rows import row_from_hash
from archive.schema import SCHEMA_VERSION, ArchiveRefused, ensure_schema, head_revision
from archive.store import Archive, HistoryQuery
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from worker.archiver import Archiver
from worker.context import WorkerContext

TO = "033334445566770"
DAY = 86400


@pytest.fixture
def producer(settings_for, redis_client) -> SmsProducer:
    return SmsProducer(settings_for())


def die(ledger, job_id) -> None:
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    assert ledger.finish(job_id, "w1", "permanent", status="failed", http=400)[0] == "dead"


def dead_job(producer, to=TO, **kwargs) -> str:
    job_id = producer.send_sms(to=to, sender="F", text="hello there", **kwargs)
    die(producer.ledger, job_id)
    return job_id


def retention_over(ledger, job_id) -> None:
    """Move the record's retention deadline to the past (the clock, not a sleep)."""
    ledger.redis.zadd(ledger.keys.retention, {job_id: 0})


def pending(ledger) -> dict[str, float]:
    return dict(ledger.redis.zrange(ledger.keys.archive_pending, 0, -1, withscores=True))


def test_without_an_archive_nothing_waits_and_the_sweep_removes_as_before(producer):
    ledger = producer.ledger
    job_id = dead_job(producer)
    retention_over(ledger, job_id)
    assert pending(ledger) == {}
    assert ledger.sweep() == 1 and ledger.get(job_id) is None


def test_a_record_leaves_redis_only_once_archived_unchanged(producer):
    ledger = producer.ledger
    ledger.claim_archive("id-1 sqlite:///x")
    job_id = dead_job(producer)
    [(queued, changed)] = pending(ledger).items()
    assert queued == job_id
    retention_over(ledger, job_id)
    assert ledger.sweep() == 0 and ledger.get(job_id) is not None  # not archived yet: it stays

    read = ledger.archive_pending(10)
    assert ledger.operate("requeue", job_id)[0]  # a change after the archiver read it
    assert ledger.archived(read) == 0 and job_id in pending(ledger)
    die(ledger, job_id)
    assert ledger.archived(ledger.archive_pending(10)) == 1 and pending(ledger) == {}
    retention_over(ledger, job_id)
    assert ledger.sweep() == 1 and ledger.get(job_id) is None


def sent_job(ledger, producer) -> str:
    job_id = producer.send_sms(to=TO, sender="F", text="hi")
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "accepted", status="ok", http=200, message_id="m-1", price=0.05)
    return job_id


def test_a_sent_record_whose_receipt_never_came_is_archived_before_its_retention_ends(producer):
    ledger = producer.ledger
    ledger.claim_archive("id-1 sqlite:///x")
    job_id = sent_job(ledger, producer)
    due = pending(ledger)[job_id]
    assert due > time.time() + 0.9 * producer.settings.retention_s  # not now: its receipt may still come
    assert ledger.archive_pending(10) == []
    ledger.redis.zadd(ledger.keys.archive_pending, {job_id: 0})  # the clock moves on
    ledger.redis.zadd(ledger.keys.awaiting, {job_id: 0})
    assert ledger.sweep() == 0  # due but not yet written: it stays
    ledger.archived(ledger.archive_pending(10))
    assert ledger.sweep() == 1 and ledger.get(job_id) is None


def test_a_record_from_before_the_archive_is_queued_by_the_sweep_before_it_goes(producer):
    ledger = producer.ledger
    job_id = sent_job(ledger, producer)
    ledger.claim_archive("id-1 sqlite:///x")
    ledger.redis.zadd(ledger.keys.awaiting, {job_id: 0})
    assert ledger.sweep() == 0 and job_id in pending(ledger)
    ledger.archived(ledger.archive_pending(10))
    assert ledger.sweep() == 1 and ledger.get(job_id) is None


def test_the_archiver_writes_what_waits_and_forget_redacts_live_records(producer, settings_for, archive_url):
    settings = settings_for(COSMOS_ARCHIVE_URL=archive_url)
    ledger = producer.ledger
    archive = open_archive(settings, ledger)
    assert archive is not None
    job_id = dead_job(producer, idempotency_key="key-7")
    archiver = Archiver(WorkerContext(settings), archive)
    assert archiver.tick() == 1
    [row] = archive.history(HistoryQuery(to=TO), 10)
    assert (row.job_id, row.state, row.text, row.redacted) == (job_id, "dead", "hello there", False)

    assert forget_in_redis(ledger, TO) == 1
    record = ledger.get(job_id)
    assert record is not None
    assert (record["to"], record["redacted"]) == ("************770", True)
    assert record["idempotency_key"].startswith("sha256:")
    assert ledger.redis.zcard(ledger.keys.by_number(TO)) == 0
    assert ledger.redis.exists(ledger.keys.idempotency("key-7")) == 0
    assert archiver.tick() == 1  # the redacted record is written again
    assert archive.history(HistoryQuery(to=TO), 10) == []
    [row] = archive.history(HistoryQuery(to="************770"), 10)
    assert (row.text, row.redacted) == ("*" * len("hello there"), True)


def test_retention_deletes_old_rows_and_redaction_hides_them_keeping_the_daily_figures(archive_url, prefix):
    engine = create_archive_engine(archive_url)
    ensure_schema(engine, "test")
    archive = Archive(engine, prefix)
    now = time.time()
    raw = {"state": "delivered", "to": TO, "from": "F", "text": "secret", "price": "0.5", "callback": "http://a/b?t=1"}
    archive.write(
        [row_from_hash(prefix, f"old{i}", {**raw, "created_ts": str(now - 40 * DAY - i)}, now) for i in range(3)]
    )
    archive.write([row_from_hash(prefix, "new", {**raw, "created_ts": str(now)}, now)])
    before = archive.spend("month")

    assert archive.redact_older_than(now - 30 * DAY, step=2) == 2
    assert archive.redact_older_than(now - 30 * DAY, step=2) >= 1
    rows = {r.job_id: r for r in archive.history(HistoryQuery(), 10)}
    assert all(rows[f"old{i}"].redacted and rows[f"old{i}"].text == "******" for i in range(3))
    assert rows["old0"].callback == "http://a/b" and rows["old0"].to == "************770"
    assert not rows["new"].redacted and rows["new"].text == "secret"

    while archive.delete_older_than(now - 30 * DAY, step=2):
        pass
    assert [r.job_id for r in archive.history(HistoryQuery(), 10)] == ["new"]
    assert archive.spend("month") == before  # the daily figures stay


def test_a_second_archive_or_none_is_refused_naming_both(producer, settings_for, tmp_path):
    first = settings_for(COSMOS_ARCHIVE_URL=f"sqlite:///{tmp_path}/a.sqlite3")
    assert open_archive(first, producer.ledger) is not None
    second = settings_for(COSMOS_ARCHIVE_URL=f"sqlite:///{tmp_path}/b.sqlite3")
    with pytest.raises(ArchiveRefused, match="b.sqlite3.*a.sqlite3"):
        open_archive(second, producer.ledger)
    with pytest.raises(ArchiveRefused, match="COSMOS_ARCHIVE_URL is none.*a.sqlite3"):
        open_archive(settings_for(COSMOS_ARCHIVE_URL="none"), producer.ledger)


def test_another_schema_version_is_refused_naming_migrate_and_the_password_is_never_shown(
    producer, settings_for, postgres_server
):
    url = postgres_server.create_database(f"old_{producer.keys.prefix}")
    engine = create_archive_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    with_password = url.replace("postgres@", "postgres:hunter2@")
    with pytest.raises(ArchiveRefused, match="cosmos-sms archive migrate") as refused:
        open_archive(settings_for(COSMOS_ARCHIVE_URL=with_password), producer.ledger)
    assert "hunter2" not in str(refused.value) and "***" in str(refused.value)


def test_the_schema_version_processes_expect_is_the_newest_migration():
    assert head_revision() == SCHEMA_VERSION


OPEN_WHEN_TOLD = """
import os, sys
from config.settings import Settings
from archive.opening import open_archive
from producers.producer import SmsProducer
open(sys.argv[1] + f".ready{os.getpid()}", "w").close()
sys.stdin.readline()  # blocks until the test says go, to every process at once
settings = Settings(_env_file=None)
print(open_archive(settings, SmsProducer(settings).ledger) is not None)
"""


def test_processes_starting_together_all_open_one_new_archive(base_env, tmp_path):
    """`cosmos-sms worker` starts its processes at once: each creates the new archive's schema, and
    none may refuse to start because another created it first."""
    env = {**os.environ, **base_env, "COSMOS_ARCHIVE_URL": f"sqlite:///{tmp_path}/together.sqlite3"}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_WHEN_TOLD, str(go)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    wait_for(lambda: len(list(tmp_path.glob("go.ready*"))) == 4, timeout=60, what="the processes to be ready")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [(p.returncode, out.strip()) for p, (out, _) in zip(procs, outputs)] == [(0, b"True")] * 4, outputs
