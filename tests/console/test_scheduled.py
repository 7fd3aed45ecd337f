"""The console shows scheduled sends: a message's send_at and what it waits for, the "scheduled"
filter, and the overview's scheduled count, backlog and quiet hours."""

from __future__ import annotations

import time
import uuid

from ledger.store import NewJob
from tests.console.helpers import el, enqueue, number, soup


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
