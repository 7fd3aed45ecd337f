"""The console shows scheduled sends: a message's send_at and what it waits for, the "scheduled"
filter, and the overview's scheduled count, backlog and quiet hours."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from console.app import create_app
from ledger.store import NewJob
from tests.console.helpers import OPERATOR, el, enqueue, login, number, soup


def scheduled(ledger, to: str, send_at: float) -> str:
    job_id = uuid.uuid4().hex
    ledger.enqueue([NewJob(job_id, "bulk", to, "Shop", "sale", None, False, None, "fp", 3600, send_at)])
    return job_id


def test_a_scheduled_message_shows_its_send_at_and_the_filter_finds_only_those(operator, ledger):
    send_at = time.time() + 3600
    later = scheduled(ledger, number(1), send_at)
    now = enqueue(ledger, number(2))

    page = soup(operator.get(f"/messages/{later}"))
    assert el(page, id="send-at").text.endswith("Z")
    assert el(page, id="waiting").text.startswith("waiting for send_at 20")
    assert soup(operator.get(f"/messages/{now}")).find(id="waiting") is None

    rows = el(soup(operator.get("/messages?scheduled=1")), id="results").find_all("tr", attrs={"data-job": True})
    assert [tr["data-job"] for tr in rows] == [later]
    assert "scheduled: scheduled messages are queued" in operator.get("/messages?scheduled=1&state=dead").text

    overview = soup(operator.get("/"))
    assert el(overview, id="scheduled").text.startswith("1 (next ")
    assert el(overview, "td", attrs={"data-backlog": "single"}).text == "1"
    assert el(overview, "td", attrs={"data-backlog": "bulk"}).text == "0"
    assert el(overview, id="quiet-hours").text == "off"


def test_the_overview_says_when_the_quiet_hours_end(settings_for, users_value, redis_client):
    # The ledger's clock at 02:00 UTC tonight: inside 22:00-06:00.
    night = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    settings = settings_for(
        COSMOS_CONSOLE_USERS=users_value,
        COSMOS_QUIET_HOURS="22:00-06:00",
        COSMOS_TEST_CLOCK_OFFSET_S=str(night.timestamp() - time.time()),
    )
    with TestClient(create_app(settings, client=redis_client, background=False)) as client:
        assert login(client, OPERATOR[0], OPERATOR[2]).status_code == 303
        shown = el(soup(client.get("/")), id="quiet-hours").text
    assert shown == f"on until {night.replace(hour=6).isoformat().replace('+00:00', '.000Z')} (0 bulk waiting)"
