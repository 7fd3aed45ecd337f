"""The on-call view through the test client: the Processes page and the banner on every page."""

from __future__ import annotations

from ledger.processes import Heartbeats
from tests.console.helpers import el, enqueue, make_dead, number, soup
from tests.support.polling import wait_for

INFO = {
    "host": "h1",
    "pid": 41,
    "lanes": ["single", "bulk"],
    "threads_busy": 2,
    "threads_total": 8,
    "send_threads_busy": 0,
    "send_threads_total": 50,
    "binds": 0,
    "version": "0.1.0",
    "started_at": "2026-12-08T00:00:00.000Z",
    "last_reconciler_run": None,
}


def test_processes_page_lists_each_process_with_when_it_was_last_seen(viewer, ledger, redis_client):
    beats = Heartbeats(redis_client, ledger.keys)
    beats.beat("h1:41", INFO, interval_s=5)
    beats.beat("h2:7", {**INFO, "host": "h2", "pid": 7}, interval_s=0.01)  # lost after 30 ms of silence
    wait_for(lambda: [p["state"] for p in beats.seen() if p["id"] == "h2:7"] == ["lost"], timeout=5, what="h2 lost")
    page = soup(viewer.get("/processes"))
    rows = {tr["data-process"]: tr for tr in el(page, id="processes").find_all("tr", attrs={"data-process": True})}
    assert set(rows) == {"h1:41", "h2:7"}
    assert (rows["h1:41"]["data-state"], rows["h2:7"]["data-state"]) == ("alive", "lost")
    assert "single, bulk" in rows["h1:41"].text and "2/8" in rows["h1:41"].text
    assert el(rows["h1:41"], "td", class_="seen").text.startswith("last seen ") and "s ago" in rows["h1:41"].text


def test_the_banner_says_no_worker_is_alive_and_what_is_paused_on_every_page(operator, ledger, redis_client):
    redis_client.hset(ledger.keys.pause, "op:bulk", '{"reason": "campaign review", "by": "alice", "ts": 1}')
    for path in ("/", "/messages", "/dead", "/processes"):
        banner = el(soup(operator.get(path)), id="banner").text
        assert "No worker process has been seen in the last 10 minutes" in banner
        assert (
            "Sending paused (operator, lane bulk): campaign review, since 1970-01-01T00:00:01.000Z by alice." in banner
        )
    Heartbeats(redis_client, ledger.keys).beat("h1:41", INFO, interval_s=5)
    redis_client.delete(ledger.keys.pause)
    assert soup(operator.get("/")).find(id="banner") is None


def test_dead_reasons_and_states_are_explained_where_shown(viewer, ledger):
    job_id = enqueue(ledger, number(1))
    make_dead(ledger, job_id, "blacklist")
    dead = soup(viewer.get("/dead"))
    assert "Requeue: no, unless something changes" in el(dead, "td", attrs={"data-explains": "blacklist"}).text
    page = soup(viewer.get(f"/messages/{job_id}"))
    assert "opted out" in el(page, id="reason-explained").text
    assert el(page, id="state-explained").text.startswith("It will not be sent")


def test_search_takes_a_number_as_people_write_it_and_one_exact_hit_opens_the_message(viewer, ledger):
    job_id = enqueue(ledger, number(7), idem="order-7")
    written = number(7)
    spaced = "+" + " ".join((written[:4], written[4:8], written[8:12], written[12:]))
    listed = soup(viewer.get("/messages", params={"number": spaced}))
    assert [tr["data-job"] for tr in el(listed, id="results").find_all("tr", attrs={"data-job": True})] == [job_id]
    opened = viewer.get("/messages", params={"idem": "order-7"}, follow_redirects=False)
    assert (opened.status_code, opened.headers["location"]) == (303, f"/messages/{job_id}")


def test_a_deep_link_keeps_its_query_through_the_login(anon, ledger):
    from tests.console.helpers import OPERATOR, csrf_of

    wanted = "/messages?state=queued&number=033334445566770"
    redirect = anon.get(wanted, follow_redirects=False)
    assert redirect.status_code == 303
    form = anon.get(redirect.headers["location"])
    assert el(soup(form), "input", attrs={"name": "next"})["value"] == wanted
    done = anon.post(
        "/login",
        data={"csrf_token": csrf_of(form), "next": wanted, "name": OPERATOR[0], "password": OPERATOR[2]},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, wanted)


def test_failed_logins_are_audited_and_an_action_ends_on_its_result(anon, operator, ledger, redis_client):
    from tests.console.helpers import OPERATOR, csrf_of, token

    form = anon.get("/login")
    anon.post("/login", data={"csrf_token": csrf_of(form), "next": "/", "name": OPERATOR[0], "password": "nope"})
    failed = [e for _, e in redis_client.xrange(ledger.keys.audit) if e["action"] == "login_failed"]
    assert [e["user"] for e in failed] == [OPERATOR[0]]
    job_id = enqueue(ledger, number(8))
    result = soup(operator.post(f"/messages/{job_id}/cancel", data={"csrf_token": token(operator)}))
    assert el(result, id="notice").text == f"Cancelled {job_id}; it is now cancelled."
    assert el(result, id="back")["href"] == f"/messages/{job_id}"


def test_a_finished_batch_offers_no_cancel(operator, ledger):
    from tests.console.helpers import enqueue_batch

    done = enqueue_batch(ledger, "all-done", [number(1), number(2)])
    enqueue_batch(ledger, "running", [number(3)])
    for job_id in done:
        make_dead(ledger, job_id, "failed")

    def row(batch_id: str):
        return el(
            el(soup(operator.get(f"/batches?batch={batch_id}")), id="batches"), "tr", attrs={"data-batch": batch_id}
        )

    assert row("all-done").find("form") is None and row("running").find("form") is not None


def test_the_chart_has_a_time_axis_and_a_not_delivered_series(operator, ledger, redis_client):
    import time as clock

    from console.activity import ActivityCounter

    job_id = enqueue(ledger, number(4))
    entry = redis_client.xadd(ledger.keys.events, {"job": job_id, "state": "not_delivered", "prev": "sent"})
    ActivityCounter(redis_client, ledger.keys).step()
    page = soup(operator.get("/"))
    minute = clock.strftime("%H:%M", clock.gmtime(int(entry.split("-")[0]) / 1000))
    assert f"{minute} not_delivered 1" in [t.text for t in el(page, id="chart").find_all("title")]
    assert el(page, id="chart-not-delivered").text == "1"
    ticks = [t.text for t in el(page, id="chart-axis").find_all("text")]
    assert ticks and all(t.endswith("0") and len(t) == 5 for t in ticks)  # every 10 minutes, HH:M0
