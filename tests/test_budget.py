"""Budgets: budget days in a time zone, the count kept by the ledger's acceptances, the pause, its end.

The ledger's paths run against a real Redis (milliseconds each); the day boundaries are a unit test of
one function. Real workers and a real sandbox are in tests/test_budget_pipeline.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.errors import SettingsError
from config.settings import load_settings
from ledger.budget import Budget, budget_day
from ledger.controls import Controls
from ledger.operations import resume_budget
from ledger.stats import stats
from producers.events import EventFeed, EventReader
from producers.producer import SmsProducer

TO = "033334445566770"
DAY = 86400
KEEP_S = 3 * DAY
"""Jobs of these tests outlive the moved clocks."""


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# --- budget days ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("zone", "noon", "start", "end", "hours"),
    [
        ("Europe/Berlin", "2026-03-29T10:00", "2026-03-28T23:00", "2026-03-29T22:00", 23),  # spring forward
        ("Europe/Berlin", "2026-10-25T10:00", "2026-10-24T22:00", "2026-10-25T23:00", 25),  # fall back
        ("America/New_York", "2026-11-01T16:00", "2026-11-01T04:00", "2026-11-02T05:00", 25),
        # Chile skips midnight itself: the day starts at 01:00, where the day before ended.
        ("America/Santiago", "2026-09-06T16:00", "2026-09-06T04:00", "2026-09-07T03:00", 23),
        ("Asia/Kolkata", "2026-12-08T06:00", "2026-12-07T18:30", "2026-12-08T18:30", 24),
        ("UTC", "2026-12-08T12:00", "2026-12-08T00:00", "2026-12-09T00:00", 24),
    ],
)
def test_a_budget_day_runs_from_midnight_to_midnight_in_its_zone_dst_included(zone, noon, start, end, hours):
    tz = ZoneInfo(zone)
    assert budget_day(utc(noon), tz) == (utc(start), utc(end))
    assert (utc(end) - utc(start)) / 3600 == hours
    # The boundaries belong to exactly one day each: a day's last second is before the next day's start.
    assert budget_day(utc(end), tz)[0] == utc(end)
    assert budget_day(utc(end) - 1, tz) == (utc(start), utc(end))


def test_the_scripts_get_three_consecutive_days_around_now(settings_for):
    budget = Budget(settings_for(COSMOS_BUDGET_TZ="Europe/Berlin"))
    days = budget.days(utc("2026-03-29T10:00"))
    assert days.bounds == (
        utc("2026-03-27T23:00"),
        utc("2026-03-28T23:00"),
        utc("2026-03-29T22:00"),
        utc("2026-03-30T22:00"),
    )


def test_budget_settings_are_checked_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COSMOS_BUDGET_TZ", "Mars/Olympus")
    with pytest.raises(SettingsError, match="^COSMOS_BUDGET_TZ: 'Mars/Olympus' is not an IANA time zone"):
        load_settings(_env_file=None)
    monkeypatch.setenv("COSMOS_BUDGET_TZ", "UTC")
    monkeypatch.setenv("COSMOS_DAILY_BUDGET", "-1")
    with pytest.raises(SettingsError, match="^COSMOS_DAILY_BUDGET:"):
        load_settings(_env_file=None)


def test_a_budget_on_an_smpp_route_without_its_price_is_refused(monkeypatch):
    monkeypatch.setenv("COSMOS_DAILY_BUDGET", "5")
    monkeypatch.setenv("COSMOS_TRANSPORT", "smpp")
    monkeypatch.setenv("COSMOS_SMPP_URL", "smpp://127.0.0.1:2775")
    with pytest.raises(SettingsError, match="COSMOS_SMPP_PRICE"):
        load_settings(_env_file=None)
    monkeypatch.setenv("COSMOS_SMPP_PRICE", "0.01")
    assert load_settings(_env_file=None).smpp_price == 0.01


# --- the ledger's count and pause -----------------------------------------------------------------
def producer_with(settings_for, **env: str) -> SmsProducer:
    return SmsProducer(settings_for(**env))


def send(ledger, job_id: str, *, message_id: str | None = None, price: float = 0.05) -> str:
    attempt = ledger.begin(job_id, "w1", count_delivery=True)
    if attempt.verdict != "go":
        return attempt.detail
    result, _ = ledger.finish(
        job_id, "w1", "accepted", status="ok", http=200, message_id=message_id or f"m-{job_id}", price=price
    )
    return result


def record(ledger, job_id: str) -> dict[str, Any]:
    found = ledger.get(job_id)
    assert found is not None
    return found


def jobs(producer: SmsProducer, n: int) -> list[str]:
    return [producer.send_sms(to=TO, sender="F", text=f"hi {i}", expires_in=KEEP_S) for i in range(n)]


def test_a_message_cap_pauses_every_lane_until_the_next_budget_day(settings_for, redis_client):
    producer = producer_with(settings_for, COSMOS_DAILY_MESSAGE_CAP="3")
    ledger = producer.ledger
    single = jobs(producer, 4)
    bulk = producer.send_bulk([{"to": TO, "sender": "F", "text": "b", "expires_in": KEEP_S}])
    assert [send(ledger, j) for j in single[:3]] == ["sent"] * 3
    figures = stats(ledger)
    assert figures["spend_today"]["messages"] == 3 and figures["spend_today"]["price"] == 0.15
    assert figures["paused"]["kind"] == "budget" and figures["paused"]["reason"] == "daily_message_cap"
    assert figures["paused"]["lanes"] == ["single", "bulk"]

    # Every lane waits, keeping its deadline and its attempts; nothing is released meanwhile.
    expires = record(ledger, single[3])["expires_at"]
    assert send(ledger, single[3]) == "budget_paused"
    assert send(ledger, bulk[0]) == "budget_paused"
    assert [record(ledger, j)["state"] for j in (single[3], bulk[0])] == ["retrying", "retrying"]
    assert record(ledger, single[3])["attempts"] == 0 and record(ledger, single[3])["expires_at"] == expires
    assert ledger.claim_due() == []

    # The next budget day (the ledger's clock moved past midnight) sends again, counting afresh.
    tomorrow = producer_with(settings_for, COSMOS_DAILY_MESSAGE_CAP="3", COSMOS_TEST_CLOCK_OFFSET_S=str(DAY)).ledger
    assert sorted(j for j, _, why in tomorrow.claim_due()) == sorted([single[3], bulk[0]])
    assert send(tomorrow, single[3]) == "sent"
    assert stats(tomorrow)["spend_today"]["messages"] == 1 and stats(tomorrow)["paused"] is None
    assert stats(ledger)["spend_today"]["messages"] == 3  # today's count stays today's


def test_resume_budget_lifts_the_pause_for_the_rest_of_the_day_and_a_plain_resume_does_not(settings_for, redis_client):
    producer = producer_with(settings_for, COSMOS_DAILY_BUDGET="0.10")
    ledger = producer.ledger
    controls = Controls(ledger.redis, ledger.keys)
    first, second, third = jobs(producer, 3)
    assert resume_budget(ledger, "ann") == (False, "sending is not paused by the budget")
    assert [send(ledger, first), send(ledger, second)] == ["sent", "sent"]
    assert stats(ledger)["paused"]["reason"] == "daily_budget"

    controls.resume(None, "ann")
    assert stats(ledger)["paused"]["kind"] == "budget"
    assert send(ledger, third) == "budget_paused"

    assert resume_budget(ledger, "ann") == (True, "daily_budget")
    assert stats(ledger)["paused"] is None and stats(ledger)["budget"]["resumed"]["by"] == "ann"
    entries, _ = controls.audit_page()
    assert [(e.user, e.target) for e in entries if e.action == "resume_budget"] == [("ann", "budget")]
    assert send(ledger, third) == "sent"
    assert stats(ledger)["spend_today"] == {"messages": 3, "price": 0.15, "day": stats(ledger)["spend_today"]["day"]}
    tomorrow = producer_with(settings_for, COSMOS_DAILY_BUDGET="0.10", COSMOS_TEST_CLOCK_OFFSET_S=str(DAY)).ledger
    assert stats(tomorrow)["budget"]["resumed"] is None  # a resume lasts until the day ends


def test_an_operator_pause_of_all_sending_shows_before_the_budget_and_a_lane_pause_after(settings_for, redis_client):
    producer = producer_with(settings_for, COSMOS_DAILY_MESSAGE_CAP="1")
    ledger = producer.ledger
    controls = Controls(ledger.redis, ledger.keys)
    send(ledger, jobs(producer, 1)[0])
    controls.pause("bulk", "campaign check", "ann")
    assert stats(ledger)["paused"]["kind"] == "budget"
    controls.pause(None, "maintenance", "ann")
    assert stats(ledger)["paused"]["kind"] == "operator"


def test_prices_count_in_micro_dollars_and_a_receipt_moves_them_by_at_most_the_accepted_price(
    settings_for, redis_client
):
    producer = producer_with(settings_for)
    ledger = producer.ledger
    cheap, dear, gone = jobs(producer, 3)
    for job_id in (cheap, dear, gone):
        assert send(ledger, job_id, price=0.1) == "sent"
    assert stats(ledger)["spend_today"]["price"] == 0.3  # no float drift: 3 x 100,000 micro-dollars

    def rcpt(job_id: str, price: float) -> str:
        return ledger.apply_receipt(
            job_id, to=TO, status="delivered", message_id=f"m-{job_id}", price=price, timestamp="2026-12-08 10:00:00"
        )

    assert rcpt(cheap, 0.07) == "applied"  # -0.03
    assert rcpt(dear, 0.90) == "applied"  # +0.10 at most
    assert rcpt(gone, 0) == "applied"  # -0.10 at most
    assert stats(ledger)["spend_today"] == {"messages": 3, "price": 0.27, "day": stats(ledger)["spend_today"]["day"]}
    assert stats(ledger)["total_price"] != 0.27  # the record's price is the receipt's; the budget's is clamped


def test_a_receipt_counts_on_the_budget_day_of_its_acceptance(settings_for, redis_client):
    yesterday = producer_with(settings_for, COSMOS_TEST_CLOCK_OFFSET_S=str(-DAY))
    job_id = jobs(yesterday, 1)[0]
    send(yesterday.ledger, job_id, price=0.05)
    ledger = producer_with(settings_for).ledger
    ledger.apply_receipt(
        job_id, to=TO, status="delivered", message_id=f"m-{job_id}", price=0.03, timestamp="2026-12-08 10:00:00"
    )
    assert stats(ledger)["spend_today"]["messages"] == 0 and stats(ledger)["spend_today"]["price"] == 0
    assert stats(yesterday.ledger)["spend_today"] == {
        "messages": 1,
        "price": 0.03,
        "day": stats(yesterday.ledger)["spend_today"]["day"],
    }
    key = ledger.keys.budget_day(yesterday.ledger.budget.days().start)
    assert 0 < ledger.redis.ttl(key) <= 4 * DAY  # kept a few days after its day, then gone


def test_late_acceptances_extra_sends_and_mark_sent_count_once_each(settings_for, redis_client):
    producer = producer_with(settings_for)
    ledger = producer.ledger
    late, doubled, held = jobs(producer, 3)
    ledger.begin(late, "w1", count_delivery=True)
    ledger.finish(late, "w1", "permanent", status="failed", http=200)
    assert ledger.finish(late, "w1", "accepted", status="ok", http=200, message_id="m-late", price=0.01)[0] == "sent"
    send(ledger, doubled, message_id="m-a", price=0.01)
    assert ledger.finish(doubled, "w2", "accepted", status="ok", http=200, message_id="m-a", price=0.01)[0] == (
        "duplicate"
    )
    assert ledger.finish(doubled, "w2", "accepted", status="ok", http=200, message_id="m-b", price=0.01)[0] == "extra"
    ledger.redis.hset(ledger.keys.job(held), "state", "held")  # as an ambiguous attempt under `hold` leaves it
    assert ledger.operate("mark_sent", held)[0]
    # late 1, doubled 1 + its extra send 1, mark-sent 1 (price unknown): the duplicate counts nothing.
    assert stats(ledger)["spend_today"]["messages"] == 4 and stats(ledger)["spend_today"]["price"] == 0.03


def test_budget_events_fire_once_per_level_and_state_readers_never_see_them(settings_for, redis_client):
    producer = producer_with(settings_for, COSMOS_DAILY_MESSAGE_CAP="5")
    ledger = producer.ledger
    settings = ledger.settings
    reader = EventReader("billing", "b1", settings, client=ledger.redis, start="0")
    reader.ensure_group()
    for job_id in jobs(producer, 4):
        send(ledger, job_id)
    resume_budget(ledger, "ann")  # not paused yet: nothing
    late = jobs(producer, 3)
    send(ledger, late[0])
    resume_budget(ledger, "ann")
    for job_id in late[1:]:
        send(ledger, job_id)

    warnings = [e.to_dict() for e in EventFeed(settings, client=ledger.redis, kinds={"budget"}).latest(1000)]
    assert [(w["level"], w["reason"], w["messages"], w["cap"]) for w in warnings] == [
        ("80", "daily_message_cap", "4", "5"),
        ("100", "daily_message_cap", "5", "5"),
    ]
    assert all(e.kind == "state" for e in EventFeed(settings, client=ledger.redis).latest(1000))
    assert len(EventFeed(settings, client=ledger.redis, kinds=None).latest(1000)) == 2 + 7 * 3
    state_events = reader.read(count=1000)
    assert len(state_events) == 7 * 3 and all(e.kind == "state" for e in state_events)
    reader.ack(state_events)
    assert reader.pending_count() == 0  # the budget events were acknowledged unseen

    # The log lines: the reconciler asks once per tick; each level is announced once a day, fleet-wide.
    figures = ("daily_message_cap", 7, 350_000)
    assert ledger.budget_announcements() == [(80, *figures), (100, *figures)]
    assert ledger.budget_announcements() == []


def test_event_readers_refuse_an_unknown_kind(settings_for, redis_client):
    with pytest.raises(ValueError, match="^kinds: must be None"):
        EventFeed(settings_for(), client=redis_client, kinds={"budgets"})
