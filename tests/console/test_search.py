"""Message search: each field finds its message, cursor paging covers every match once, bad input is a message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from console.search import PAGE_SIZE
from ledger.store import NewJob
from tests.console.helpers import el, enqueue, enqueue_batch, make_dead, number, soup


def found(client, query: str) -> list[str]:
    response = client.get(f"/messages?{query}", follow_redirects=False)
    if response.status_code == 303:  # one exact hit opens its message
        return [response.headers["location"].removeprefix("/messages/")]
    assert response.status_code == 200, soup(response).find(id="error")
    return [str(tr["data-job"]) for tr in el(soup(response), id="results").find_all("tr", attrs={"data-job": True})]


def test_search_by_each_field(operator, ledger, redis_client):
    a = enqueue(ledger, number(1), idem="order-1")
    b = enqueue(ledger, number(2))
    redis_client.set(ledger.keys.message_id("cosmos-77"), b)
    make_dead(ledger, b, "invalid_to")
    assert found(operator, f"job_id={a}") == [a]
    assert found(operator, "message_id=cosmos-77") == [b]
    assert found(operator, "idem=order-1") == [a]
    assert found(operator, f"number={number(2)}") == [b]
    assert found(operator, "state=dead") == [b]
    assert found(operator, "state=dead&reason=invalid_to") == [b]
    assert found(operator, "state=queued") == [a]
    assert found(operator, f"job_id={a}&state=dead") == []
    assert set(found(operator, "")) == {a, b}
    assert found(operator, "message_id=unknown") == []


def test_search_by_batch_walks_its_members(operator, ledger):
    members = enqueue_batch(ledger, "b9", [number(i) for i in range(3)])
    enqueue(ledger, number(1))
    assert found(operator, "batch=b9") == members
    assert found(operator, "batch=b9&state=dead") == []
    assert found(operator, "batch=none") == []


def test_search_by_time_range(operator, ledger, redis_client):
    old, new = enqueue(ledger, number(1)), enqueue(ledger, number(2))
    redis_client.zadd(ledger.keys.created, {old: 1_600_000_000})
    redis_client.hset(ledger.keys.job(old), "created_ts", 1_600_000_000)
    since = datetime.fromtimestamp(1_700_000_000, UTC).strftime("%Y-%m-%dT%H:%M")
    assert found(operator, f"since={since}") == [new]
    assert found(operator, "until=2021-01-01T00:00") == [old]


def test_cursor_pages_cover_every_match_once_even_with_equal_times(operator, ledger, redis_client):
    # One enqueue call stamps every job with the same created_ts: ties must not lose or repeat jobs.
    jobs = [
        NewJob(uuid.uuid4().hex, "bulk", number(5), "S", "t", None, False, None, f"fp{i}", 3600)
        for i in range(PAGE_SIZE * 2 + 7)
    ]
    ledger.enqueue(jobs)
    assert len({redis_client.hget(ledger.keys.job(j.job_id), "created_ts") for j in jobs}) == 1
    seen, query, pages = [], f"number={number(5)}", 0
    while True:
        page = soup(operator.get(f"/messages?{query}"))
        seen += [tr["data-job"] for tr in el(page, id="results").find_all("tr", attrs={"data-job": True})]
        pages += 1
        link = page.find(id="next")
        if link is None:
            break
        query = str(link["href"]).split("?", 1)[1]
    assert pages == 3 and len(seen) == len(jobs) and set(seen) == {j.job_id for j in jobs}


def test_a_filter_the_index_does_not_answer_scans_a_bounded_page(app, operator, ledger, monkeypatch):
    monkeypatch.setattr("console.search.SCAN_LIMIT", 5)
    ids = [enqueue(ledger, number(i)) for i in range(12)]
    make_dead(ledger, ids[0], "invalid_to")  # the oldest: found only after walking past the others
    page = soup(operator.get("/messages?state=dead&reason=invalid_to"))
    assert [tr["data-job"] for tr in el(page, id="results").find_all("tr", attrs={"data-job": True})] == [ids[0]]
    page = soup(operator.get("/messages?state=delivered"))
    assert "5 entries read" in page.text and page.find(id="next") is not None


@pytest.mark.parametrize(
    "query, message",
    [
        ("number=123", "number: must be 0 followed by 14 digits"),
        ("since=yesterday", "since: not a date and time"),
        ("state=lost", "state: unknown state"),
        ("cursor=abc", "cursor: malformed"),
        ("job_id=%3Cscript%3E", "job_id: unexpected characters"),
        ("since=2025-01-02T00:00&until=2025-01-01T00:00", "since: later than until"),
        ("state=queued&reason=invalid_to", "reason: only dead messages"),
    ],
)
def test_malformed_search_is_a_message_never_a_500(operator, query, message):
    response = operator.get(f"/messages?{query}")
    assert response.status_code == 400
    assert el(soup(response), id="error").text.startswith(message)


def test_the_next_page_starts_after_the_last_entry_seen_even_when_earlier_ones_left(operator, ledger, redis_client):
    # The cursor names the last entry seen, not an offset Redis walks: ties and removals lose nothing.
    jobs = [
        NewJob(uuid.uuid4().hex, "bulk", number(6), "S", "t", None, False, None, f"fp{i}", 3600)
        for i in range(PAGE_SIZE * 2)
    ]
    ledger.enqueue(jobs)
    page = soup(operator.get(f"/messages?number={number(6)}"))
    seen = [tr["data-job"] for tr in el(page, id="results").find_all("tr", attrs={"data-job": True})]
    link = page.find(id="next")
    assert link is not None
    next_query = str(link["href"]).split("?", 1)[1]
    redis_client.zrem(ledger.keys.by_number(number(6)), *seen[:10])  # as the retention sweep removes them

    rest = found(operator, next_query)

    assert sorted(rest) == sorted({j.job_id for j in jobs} - set(seen)) and len(rest) == PAGE_SIZE
