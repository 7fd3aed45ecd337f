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
