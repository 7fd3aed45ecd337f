"""The overview's budget tile: spend today against the caps, and "resume for today" for operators (audited)."""

from __future__ import annotations

import pytest

from ledger.stats import stats
from tests.console.helpers import el, enqueue, number, soup, token


@pytest.fixture
def console_settings(settings_for, users_value):
    return settings_for(
        COSMOS_CONSOLE_USERS=users_value, COSMOS_DAILY_MESSAGE_CAP="1", COSMOS_BUDGET_TZ="Europe/Berlin"
    )


def reach_the_cap(ledger) -> None:
    job_id = enqueue(ledger, number(1))
    assert ledger.begin(job_id, "w", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w", "accepted", status="ok", http=200, message_id="m-1", price=0.02)


def test_the_overview_shows_spend_and_caps_and_viewers_cannot_resume(viewer, ledger):
    page = soup(viewer.get("/"))
    assert el(page, id="spend-messages").text == "0 of 1"
    assert "Europe/Berlin" in el(page, id="budget").text
    reach_the_cap(ledger)
    page = soup(viewer.get("/"))
    assert el(page, id="spend-messages").text == "1 of 1" and el(page, id="spend-price").text == "0.0200"
    assert "daily_message_cap reached" in el(page, id="budget-paused").text
    assert "budget" in el(page, id="paused").text
    assert page.find(id="resume-budget") is None
    assert viewer.post("/controls/resume-budget", data={"csrf_token": token(viewer)}).status_code == 403


def test_an_operator_resumes_sending_for_today_audited(operator, ledger, redis_client):
    reach_the_cap(ledger)
    assert el(soup(operator.get("/")), id="resume-budget")
    done = operator.post("/controls/resume-budget", data={"csrf_token": token(operator)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert stats(ledger)["paused"] is None and stats(ledger)["budget"]["resumed"]["by"] == "alice"
    [(_, entry), *_] = redis_client.xrevrange(ledger.keys.audit)
    assert (entry["action"], entry["user"], entry["target"]) == ("resume_budget", "alice", "budget")
    page = soup(operator.get("/"))
    assert page.find(id="resume-budget") is None and "by alice" in el(page, id="budget").text
