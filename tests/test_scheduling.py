"""Scheduled sends and quiet hours in the ledger, called directly against a real Redis.

Each `at(...)` ledger reads the same Redis with its clock moved (COSMOS_TEST_CLOCK_OFFSET_S), so a
test goes to the send time or past a window's end at once, never by sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.errors import InvalidMessage
from ledger.schema import RELEASE_STEP
from ledger.stats import stats
from producers.producer import SmsProducer
from receipts.metrics import LedgerCollector
from tests.support.redis_server import start_private_redis

TO = "033334445566770"
HOUR = 3600.0


@pytest.fixture
def at(settings_for, redis_client):
    """`at(offset_s, **env)`: a producer (and its ledger) whose clock is `offset_s` ahead of Redis TIME."""

    def build(offset_s: float = 0.0, **env: str) -> SmsProducer:
        return SmsProducer(settings_for(COSMOS_TEST_CLOCK_OFFSET_S=str(offset_s), **env))

    return build


def send(producer, **kwargs) -> str:
    return producer.send_sms(to=TO, sender="F", text="see you at 10", **kwargs)


def ahead(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2030, 1, 1, 9, 0), "no UTC offset"),
        ("2030-01-01T09:00:00", "no UTC offset"),
        ("2030-01-01", "no UTC offset"),
        ("tomorrow at nine", "not an ISO 8601"),
        (1893488400, "aware datetime"),
    ],
    ids=["naive-datetime", "string-without-offset", "date-only", "garbage", "epoch-number"],
)
def test_a_send_at_without_a_definite_moment_is_refused_and_nothing_recorded(at, value, reason):
    producer = at()
    with pytest.raises(InvalidMessage, match=reason) as err:
        send(producer, send_at=value)
    assert err.value.field == "send_at"
    with pytest.raises(InvalidMessage) as bulk_err:
        producer.send_bulk(
            [{"to": TO, "sender": "F", "text": "a"}, {"to": TO, "sender": "F", "text": "b", "send_at": value}]
        )
    assert (bulk_err.value.field, bulk_err.value.index) == ("send_at", 1)
    assert stats(producer.ledger)["states"]["queued"] == 0


def test_a_send_at_beyond_the_schedule_limit_is_refused(at):
    producer = at(COSMOS_MAX_SCHEDULE_AHEAD_S="3600")
    with pytest.raises(InvalidMessage, match="COSMOS_MAX_SCHEDULE_AHEAD_S") as err:
        send(producer, send_at=ahead(2 * HOUR))
    assert err.value.field == "send_at"
    assert send(producer, send_at=ahead(HOUR - 60))


def test_a_scheduled_job_is_queued_at_once_with_no_broker_message_and_a_deadline_from_send_at(at):
    producer = at()
    ledger = producer.ledger
    when = ahead(HOUR).replace(microsecond=0)
    job_id = send(producer, send_at=when.astimezone(ZoneInfo("Asia/Tokyo")).isoformat(), expires_in=600)

    record = producer.get_status(job_id)
    assert record["state"] == "queued"
    assert record["send_at"] == when.isoformat().replace("+00:00", ".000Z")
    assert record["expires_at"] == (when + timedelta(seconds=600)).isoformat().replace("+00:00", ".000Z")
    assert ledger.redis.llen(ledger.keys.broker_queue_key("single")) == 0
    assert ledger.redis.zscore(ledger.keys.scheduled("single"), job_id) == when.timestamp()
    figures = stats(ledger)
    assert figures["scheduled"] == {"waiting": 1, "next_at": record["send_at"]}
    assert (figures["states"]["queued"], figures["backlog"]["single"]) == (1, 0)  # queued, but no backlog
    metrics = {family.name: family for family in LedgerCollector(ledger, 3600).collect()}
    assert metrics["cosmos_scheduled_waiting"].samples[0].value == 1
    # A past send_at means now: an ordinary job, published at once.
    now_id = send(producer, send_at=ahead(-60), idempotency_key="k1")
    assert producer.get_status(now_id)["send_at"] is None
    assert ledger.redis.llen(ledger.keys.broker_queue_key("single")) == 1
    assert stats(ledger)["backlog"]["single"] == 1
    # send_at is not part of "the same message": a repeat returns the first job unchanged.
    assert send(producer, send_at=ahead(HOUR), idempotency_key="k1") == now_id
    assert producer.get_status(now_id)["send_at"] is None


def test_nothing_releases_or_sends_a_scheduled_job_before_send_at(at):
    producer = at()
    job_id = send(producer, send_at=ahead(HOUR))
    later = at(HOUR - 5).ledger  # past the lost-message grace, before send_at

    assert later.release_due() == []
    assert [j for j, _, _ in later.claim_due()] == []
    assert later.begin(job_id, "w1", count_delivery=True).detail == "scheduled"
    assert producer.get_status(job_id)["attempts"] == 0

    assert at(HOUR + 1).ledger.release_due() == [(job_id, "single", "scheduled")]
    assert producer.ledger.redis.zcard(producer.ledger.keys.scheduled("single")) == 0
    assert at(HOUR + 1).ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"


def test_cancel_takes_a_scheduled_job_and_its_batch_out_before_it_goes(at):
    producer = at()
    single = send(producer, send_at=ahead(HOUR))
    members = producer.send_bulk(
        [{"to": TO, "sender": "F", "text": f"m{i}", "send_at": ahead(HOUR)} for i in range(3)], batch_id="tuesday"
    )
    assert producer.cancel(single)
    assert producer.cancel_batch("tuesday") == 3
    keys = producer.ledger.keys
    assert (
        producer.ledger.redis.zcard(keys.scheduled("single")) + producer.ledger.redis.zcard(keys.scheduled("bulk")) == 0
    )
    assert at(HOUR + 1).ledger.release_due() == []
    assert {producer.get_status(j)["state"] for j in [single, *members]} == {"cancelled"}


def test_a_job_scheduled_beyond_retention_is_kept_until_sent_and_its_batch_with_it(at):
    retention = "600"
    producer = at(COSMOS_RETENTION_S=retention)
    keep, drop = producer.send_bulk(
        [
            {"to": TO, "sender": "F", "text": "later", "send_at": ahead(2 * HOUR)},
            {"to": TO, "sender": "F", "text": "now", "send_at": ahead(60)},
        ],
        batch_id="far",
    )
    assert producer.cancel(drop)  # a final member starts the batch's retention
    far = at(HOUR, COSMOS_RETENTION_S=retention).ledger  # retention long past
    while far.sweep():
        pass
    assert producer.get_status(keep)["state"] == "queued"
    assert producer.get_status(drop) is None
    assert producer.ledger.redis.ttl(producer.ledger.keys.batch("far")) > HOUR
    assert at(2 * HOUR + 1, COSMOS_RETENTION_S=retention).ledger.release_due() == [(keep, "bulk", "scheduled")]


def test_release_hands_over_due_jobs_in_due_order_in_bounded_steps(at, redis_client):
    producer = at()
    base = ahead(60)
    n = 2 * RELEASE_STEP + 10
    ids = producer.send_bulk(
        [{"to": TO, "sender": "F", "text": str(i), "send_at": base + timedelta(milliseconds=n - i)} for i in range(n)]
    )
    later = at(120).ledger
    redis_client.config_set("slowlog-log-slower-than", 10_000)
    redis_client.slowlog_reset()
    steps = []
    while step := later.release_due():
        steps.append(step)
    assert [len(s) for s in steps] == [RELEASE_STEP, RELEASE_STEP, 10]
    assert [job for s in steps for job, _, _ in s] == list(reversed(ids))
    assert [e for e in redis_client.slowlog_get(100) if e["duration"] > 20_000] == []


def test_quiet_hours_hold_bulk_never_singles_and_release_in_due_order_at_the_end(at):
    quiet = {"COSMOS_QUIET_HOURS": "21:00-08:00", "COSMOS_QUIET_HOURS_TZ": "America/New_York"}
    ny = ZoneInfo("America/New_York")
    # Move the clock to 23:30 in New York tonight: inside the window, across midnight from its start.
    now = datetime.now(ny)
    night = now.replace(hour=23, minute=30, second=0, microsecond=0)
    offset = night.timestamp() - time.time()
    until = (night + timedelta(hours=8, minutes=30)).timestamp()  # 08:00 the next morning
    producer = at(offset, **quiet)
    bulk = producer.send_bulk([{"to": TO, "sender": "F", "text": str(i)} for i in range(3)])
    single = send(producer)
    ledger = producer.ledger

    assert ledger.begin(single, "w1", count_delivery=True).verdict == "go"
    held = ledger.begin_many(list(reversed(bulk)), ["w1"] * 3, count_delivery=True)
    assert [a.detail for a in held] == ["quiet_hours"] * 3
    assert [producer.get_status(j)["attempts"] for j in bulk] == [0, 0, 0]
    assert {producer.get_status(j)["state"] for j in bulk} == {"queued"}
    figures = stats(ledger)
    assert figures["quiet_hours"]["until"] == datetime.fromtimestamp(until, UTC).isoformat().replace("+00:00", ".000Z")
    assert figures["paused"] is None
    assert ledger.release_due() == []

    after = at(offset + (until - night.timestamp()) + 1, **quiet).ledger
    assert after.release_due() == [(j, "bulk", "quiet_ended") for j in bulk]  # due order: enqueue order
    assert stats(after)["quiet_hours"] is None
    assert after.begin(bulk[0], "w1", count_delivery=True).verdict == "go"


def test_a_bulk_send_at_inside_quiet_hours_keeps_it_and_goes_when_they_end_or_expires(at):
    quiet = {"COSMOS_QUIET_HOURS": "21:00-08:00", "COSMOS_QUIET_HOURS_TZ": "UTC"}
    today = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0)
    offset = today.timestamp() - time.time()
    producer = at(offset, **quiet)
    at_22 = today + timedelta(hours=2)
    kept, doomed = producer.send_bulk(
        [
            {"to": TO, "sender": "F", "text": "morning", "send_at": at_22},
            {"to": TO, "sender": "F", "text": "tonight only", "send_at": at_22, "expires_in": HOUR},
        ]
    )
    night = at(offset + 2 * HOUR + 60, **quiet).ledger
    assert night.release_due() == []  # due, but quiet: moved to the quiet set
    assert night.redis.zscore(night.keys.quiet, kept) == at_22.timestamp()
    past_deadline = at(offset + 3 * HOUR + 60, **quiet).ledger
    past_deadline.claim_due()
    assert producer.get_status(doomed)["state"] == "expired"
    morning = at(offset + 12 * HOUR + 1, **quiet).ledger
    assert morning.release_due() == [(kept, "bulk", "quiet_ended")]
    record = producer.get_status(kept)
    assert record["send_at"] == at_22.isoformat().replace("+00:00", ".000Z")
    assert record["state"] == "queued"


def test_a_schedule_months_ahead_survives_a_redis_restart(settings_for, tmp_path):
    server = start_private_redis(tmp_path / "redis", "--appendonly", "yes")
    try:
        env = {"REDIS_URL": server.url, "COSMOS_MAX_SCHEDULE_AHEAD_S": str(100 * 86400)}
        producer = SmsProducer(settings_for(**env))
        job_id = send(producer, send_at=ahead(90 * 86400))
        server.stop(graceful=True)
        server.start()
        later = SmsProducer(settings_for(COSMOS_TEST_CLOCK_OFFSET_S=str(90 * 86400 + 60), **env)).ledger
        assert later.release_due() == [(job_id, "single", "scheduled")]
        assert (later.get(job_id) or {}).get("state") == "queued"
    finally:
        server.stop(graceful=False)
