"""Every console page through the test client, asserting on what the page shows."""

from __future__ import annotations

import time

from console.activity import ActivityCounter
from ledger.outbox import single_message
from tests.console.helpers import el, enqueue, make_dead, make_held, number, soup


def test_overview_shows_counts_queues_pause_breaker_and_price(operator, ledger, redis_client):
    for i in range(3):
        enqueue(ledger, number(i))
    redis_client.lpush(*single_message(ledger.keys, "single", enqueue(ledger, number(9))))
    redis_client.hset(ledger.keys.pause, "op:bulk", '{"reason": "campaign review", "by": "alice", "ts": 1}')
    redis_client.hset(ledger.keys.breaker, mapping={"state": "open", "failures": 12})
    page = soup(operator.get("/"))
    assert el(page, "td", attrs={"data-state": "queued"}).text == "4"
    queued_row = el(page, "td", attrs={"data-state": "queued"}).parent
    assert queued_row is not None
    lanes = {td["data-lane"]: td.text for td in queued_row.find_all("td", attrs={"data-lane": True})}
    assert sum(int(n) for n in lanes.values()) == 4 and set(lanes) == {"single", "bulk"}
    assert el(page, "td", attrs={"data-queue": "single"}).text == "1"
    assert el(page, id="oldest").text.endswith(" s")
    assert "op:bulk: campaign review" in el(page, id="paused").text
    assert el(page, id="breaker").text.startswith("open (12 failures")
    assert el(page, id="route").text == "http"


def test_overview_chart_counts_events_per_minute_and_price(operator, ledger, redis_client):
    job_id = enqueue(ledger, number(1))
    redis_client.hset(ledger.keys.job(job_id), "price", "0.25")
    now = time.time()
    for state in ("sent", "sent", "delivered", "dead"):
        redis_client.xadd(ledger.keys.events, {"job": job_id, "state": state, "prev": "queued"})
    counter = ActivityCounter(redis_client, ledger.keys)
    assert counter.step() == 5 and counter.step() == 0  # the enqueue event and ours, each counted once
    page = soup(operator.get("/"))
    chart = el(page, id="chart")
    titles = [t.text for t in chart.find_all("title")]
    minute = time.strftime("%H:%M", time.gmtime(now))
    assert f"{minute} sent 2" in titles and f"{minute} delivered 1" in titles and f"{minute} dead 1" in titles
    assert el(page, id="price-today").text == "0.2500" and el(page, id="price-24h").text == "0.2500"
    assert redis_client.ttl(ledger.keys.console_minute(int(now // 60))) > 0  # bounded: every bucket expires


def test_overview_stream_sends_the_tiles_as_server_sent_events(operator, ledger):
    enqueue(ledger, number(1))
    response = operator.get("/overview/stream?updates=1")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: tiles" in response.text and 'data-state="queued">1<' in response.text


def test_message_page_shows_fields_the_timeline_and_actions(operator, ledger, redis_client):
    job_id = enqueue(ledger, number(5), idem="order-5")
    assert ledger.begin(job_id, "w1", count_delivery=True).verdict == "go"
    ledger.finish(job_id, "w1", "transient", status="server_error", http=503, latency_ms=120, error="HTTP 503")
    ledger.finish(job_id, "w1", "defer", delay_s=0)
    page = soup(operator.get(f"/messages/{job_id}"))
    assert el(page, id="state").text == "retrying"
    rows = [[td.text for td in tr.find_all("td")] for tr in el(el(page, id="timeline"), "tbody").find_all("tr")]
    assert [row[1] for row in rows] == ["queued", "sending", "attempt", "retry_scheduled"]
    assert all(row[0].endswith("Z") for row in rows)
    assert rows[2][3] == "attempt 1, status server_error, HTTP 503, 120 ms, route http, error HTTP 503"
    assert rows[3][2] == "retrying"
    fields = el(page, id="fields").text
    assert "order-5" in fields and number(5) in fields
    assert page.find(id="action-cancel") is not None and page.find(id="action-requeue") is None


def test_unknown_job_is_a_404_page(operator):
    response = operator.get("/messages/no-such-job")
    assert response.status_code == 404
    assert el(soup(response), "h1").text == "Not found" and "no-such-job" in el(soup(response), id="error").text


def test_dead_letters_grouped_by_reason(operator, ledger):
    for i, reason in enumerate(("invalid_to", "invalid_to", "retries_exhausted")):
        make_dead(ledger, enqueue(ledger, number(i)), reason)
    page = soup(operator.get("/dead"))
    assert el(page, "td", attrs={"data-reason": "invalid_to"}).text == "2"
    assert el(page, "td", attrs={"data-reason": "retries_exhausted"}).text == "1"
    assert len(el(page, id="results").find_all("tr", attrs={"data-job": True})) == 3
    only = soup(operator.get("/dead?reason=retries_exhausted"))
    assert len(el(only, id="results").find_all("tr", attrs={"data-job": True})) == 1


def test_held_page_lists_held_jobs(operator, ledger):
    job_id = enqueue(ledger, number(1))
    make_held(ledger, job_id)
    page = soup(operator.get("/held"))
    assert page.find("tr", attrs={"data-job": job_id}) is not None


def test_suppression_search_finds_by_prefix(operator, ledger, redis_client):
    redis_client.sadd(ledger.keys.suppressed, number(11), number(12), "099999999999999")
    page = soup(operator.get("/suppression?q=0000"))
    shown = [td.text for td in el(page, id="numbers").find_all("td", class_="number")]
    assert shown == [number(11), number(12)]
    bad = operator.get("/suppression?q=abc")
    assert bad.status_code == 400 and "q: digits only" in el(soup(bad), id="error").text


def test_batches_show_progress(operator, ledger, redis_client):
    redis_client.hset(
        ledger.keys.batch("b1"),
        mapping={"total": 4, "created_ts": time.time(), "state:delivered": 2, "state:queued": 1, "state:dead": 1},
    )
    # One SCAN step per page: on a server shared with other tests the batch may be a few pages on.
    url: str | None = "/batches"
    row = None
    while row is None and url:
        page = soup(operator.get(url))
        row = page.find("tr", attrs={"data-batch": "b1"})
        more = page.find("a", id="next")
        url = str(more["href"]) if more else None
    assert row is not None and "75.0%" in row.text
    assert soup(operator.get("/batches?batch=b1")).find("tr", attrs={"data-batch": "b1"}) is not None
    assert operator.get("/batches?batch=nope").status_code == 404


def test_controls_and_audit_pages(operator):
    page = soup(operator.get("/controls"))
    assert "Sending is not paused." in el(page, id="pauses").text and page.find(id="reset-breaker") is not None
    audit = soup(operator.get("/audit"))
    assert el(audit, id="audit").find("td", string="login") is not None


def test_unknown_background_action_is_404(operator):
    assert operator.get("/tasks/0123456789abcdef").status_code == 404
    assert operator.get("/tasks/../../etc").status_code == 404


def test_message_page_shows_its_forwards(operator, ledger, redis_client):
    job_id = enqueue(ledger, number(8))
    redis_client.hset(ledger.keys.job(job_id), "fwd_seq", 2)
    for n in (1, 2):
        redis_client.hset(
            ledger.keys.forward(f"{job_id}.{n}"),
            mapping={"job": job_id, "url": "https://app.example/cb?token=secret-token", "attempts": n, "created_ts": 1},
        )
    redis_client.zadd(ledger.keys.forwards_failed, {f"{job_id}.1": 1})
    redis_client.zadd(ledger.keys.forwards_due, {f"{job_id}.2": 1})
    page = operator.get(f"/messages/{job_id}").text
    items = [li.text for li in soup(operator.get(f"/messages/{job_id}")).find_all("li", class_="forward")]
    assert items[0].startswith(f"forward {job_id}.1 to https://app.example/cb: failed for good, 1 attempt(s)")
    assert "pending, 2 attempt(s)" in items[1]
    assert "secret-token" not in page  # the callback's query string carries a token


def test_redis_down_is_a_503_page_not_a_traceback(console_settings, users):
    import redis
    from fastapi.testclient import TestClient

    from console.app import create_app
    from tests.console.helpers import OPERATOR, login
    from tests.support.ports import free_port

    nowhere = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.5)
    app = create_app(console_settings, users=users, client=nowhere, background=False)
    with TestClient(app) as client:
        # Logging in needs Redis too (the failure counter): the same page, no traceback.
        response = login(client, OPERATOR[0], OPERATOR[2])
        assert response.status_code == 503 and "Redis is not reachable" in el(soup(response), id="error").text


def test_inbound_page_lists_newest_first_a_page_at_a_time_and_masks_numbers_for_viewers(operator, viewer, ledger):
    from console.pages import INBOUND_PAGE

    sender = number(7)
    for i in range(INBOUND_PAGE + 2):
        ledger.record_inbound(sender, "COSMOS", f"reply {i}")

    def texts(page) -> list[str]:
        return [row.find_all("td")[3].text for row in el(page, id="inbound").find_all("tr")[1:]]

    first = soup(operator.get("/inbound"))
    assert (
        texts(first)[:2] == [f"reply {INBOUND_PAGE + 1}", f"reply {INBOUND_PAGE}"] and len(texts(first)) == INBOUND_PAGE
    )
    older = soup(operator.get(el(first, id="next")["href"]))
    assert texts(older) == ["reply 1", "reply 0"]
    assert older.find(id="next") is None
    assert sender in first.text
    assert sender not in soup(viewer.get("/inbound")).text
    assert operator.get("/inbound?before=x").status_code == 400
