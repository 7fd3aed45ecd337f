"""Operator actions through the test client: confirmation first, the ledger's guards, an audit entry each."""

from __future__ import annotations

import json

from tests.console.helpers import el, enqueue, enqueue_batch, make_dead, make_held, number, soup, token
from tests.support.polling import wait_for


def audit_actions(redis_client, ledger) -> list[tuple[str, str, str]]:
    return [(e["action"], e["target"], e["count"]) for _, e in redis_client.xrevrange(ledger.keys.audit)]


def test_requeue_selected_dead_letters_after_confirmation(operator, ledger, redis_client):
    a, b = enqueue(ledger, number(1)), enqueue(ledger, number(2))
    make_dead(ledger, a, "retries_exhausted")
    make_dead(ledger, b, "retries_exhausted")
    csrf = token(operator)
    first = operator.post(
        "/dead/action", data={"csrf_token": csrf, "scope": "selected", "action": "requeue", "ids": [a, b]}
    )
    assert first.status_code == 200 and "2 selected message(s)" in el(soup(first), id="confirm-text").text
    assert ledger.get(a)["state"] == "dead"  # nothing happens before the confirmation
    done = operator.post(
        "/dead/action",
        data={"csrf_token": csrf, "scope": "selected", "action": "requeue", "ids": [a, b], "confirmed": "yes"},
    )
    assert "2 done, 0 refused" in el(soup(done), id="notice").text
    assert [ledger.get(j)["state"] for j in (a, b)] == ["queued", "queued"]
    assert redis_client.llen(ledger.keys.broker_queue_key("single")) == 2  # republished, as the CLI does
    assert audit_actions(redis_client, ledger)[0] == ("requeue", "2 selected", "2")


def test_requeue_keeps_the_cli_guard_for_suppressed_numbers(operator, ledger, redis_client):
    job_id = enqueue(ledger, number(3))
    make_dead(ledger, job_id, "suppressed")
    redis_client.sadd(ledger.keys.suppressed, number(3))
    response = operator.post(f"/messages/{job_id}/requeue", data={"csrf_token": token(operator)})
    assert response.status_code == 409 and "suppression list" in el(soup(response), id="error").text
    assert ledger.get(job_id)["state"] == "dead"


def test_requeue_every_matching_runs_in_the_background_with_progress(app, operator, ledger, redis_client):
    ids = [enqueue(ledger, number(i)) for i in range(5)]
    for job_id in ids[:4]:
        make_dead(ledger, job_id, "retries_exhausted")
    make_dead(ledger, ids[4], "invalid_to")
    csrf = token(operator)
    confirm = operator.post(
        "/dead/action",
        data={"csrf_token": csrf, "scope": "matching", "action": "requeue", "reason": "retries_exhausted"},
    )
    assert "with reason retries_exhausted (about 4)" in el(soup(confirm), id="confirm-text").text
    started = operator.post(
        "/dead/action",
        data={
            "csrf_token": csrf,
            "scope": "matching",
            "action": "requeue",
            "reason": "retries_exhausted",
            "confirmed": "yes",
        },
        follow_redirects=False,
    )
    assert started.status_code == 303 and started.headers["location"].startswith("/tasks/")
    task_page = started.headers["location"]
    app.state.console.tasks.join()
    page = wait_for(
        lambda: el(p := soup(operator.get(task_page)), id="task-state").text == "finished" and p,
        what="the background requeue to finish",
    )
    assert page  # wait_for returns the predicate's truthy value: the page
    assert el(page, id="task-done").text == "4" and el(page, id="task-refused").text == "0"
    assert [ledger.get(j)["state"] for j in ids] == ["queued"] * 4 + ["dead"]
    assert audit_actions(redis_client, ledger)[0] == ("requeue (all matching)", "dead reason=retries_exhausted", "4")
    poll = operator.get(task_page, headers={"HX-Request": "true"})
    assert soup(poll).find(id="task") is not None and "<html" not in poll.text  # htmx gets the fragment only


def test_purge_from_the_message_page(operator, ledger, redis_client):
    job_id = enqueue(ledger, number(4))
    make_dead(ledger, job_id, "invalid_to")
    response = operator.post(f"/messages/{job_id}/purge", data={"csrf_token": token(operator)})
    assert "Purged" in el(soup(response), id="notice").text
    assert operator.get(f"/messages/{job_id}").status_code == 404
    assert redis_client.zcard(ledger.keys.dead) == 0


def test_cancel_and_refusal_of_an_action_that_does_not_apply(operator, ledger):
    job_id = enqueue(ledger, number(6))
    csrf = token(operator)
    assert operator.post(f"/messages/{job_id}/cancel", data={"csrf_token": csrf}).status_code == 200
    assert ledger.get(job_id)["state"] == "cancelled"
    refused = operator.post(f"/messages/{job_id}/requeue", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "not dead" in el(soup(refused), id="error").text
    assert operator.post("/messages/nope/cancel", data={"csrf_token": csrf}).status_code == 404
    assert operator.post(f"/messages/{job_id}/explode", data={"csrf_token": csrf}).status_code == 404


def test_held_mark_sent_and_resend(operator, ledger, redis_client):
    a, b = enqueue(ledger, number(1)), enqueue(ledger, number(2))
    make_held(ledger, a)
    make_held(ledger, b)
    csrf = token(operator)
    operator.post("/held/action", data={"csrf_token": csrf, "action": "mark_sent", "ids": [a]})
    operator.post("/held/action", data={"csrf_token": csrf, "action": "resend", "ids": [b]})
    assert ledger.get(a)["state"] == "sent"
    assert ledger.get(b)["state"] == "queued" and ledger.get(b)["ambiguous_resends"] == 1
    bad = operator.post("/held/action", data={"csrf_token": csrf, "action": "purge", "ids": [a]})
    assert bad.status_code == 400 and "action:" in el(soup(bad), id="error").text


def test_suppression_add_and_remove(operator, ledger, redis_client):
    csrf = token(operator)
    operator.post("/suppression/add", data={"csrf_token": csrf, "numbers": f"{number(1)}, {number(2)}"})
    assert redis_client.smembers(ledger.keys.suppressed) == {number(1), number(2)}
    operator.post("/suppression/remove", data={"csrf_token": csrf, "number": number(1)})
    assert redis_client.smembers(ledger.keys.suppressed) == {number(2)}
    bad = operator.post("/suppression/add", data={"csrf_token": csrf, "numbers": "12345"})
    assert bad.status_code == 400 and "numbers:" in el(soup(bad), id="error").text
    assert redis_client.scard(ledger.keys.suppressed) == 1


def test_pause_resume_and_breaker_reset(operator, ledger, redis_client):
    csrf = token(operator)
    operator.post("/controls/pause", data={"csrf_token": csrf, "lane": "bulk", "reason": "campaign review"})
    pause = json.loads(redis_client.hget(ledger.keys.pause, "op:bulk"))
    assert pause["reason"] == "campaign review" and pause["by"] == "alice"
    assert "campaign review" in el(soup(operator.get("/")), id="paused").text
    operator.post("/controls/resume", data={"csrf_token": csrf, "lane": "bulk"})
    assert redis_client.hgetall(ledger.keys.pause) == {}
    bad = operator.post("/controls/pause", data={"csrf_token": csrf, "lane": "sms"})
    assert bad.status_code == 400 and "lane:" in el(soup(bad), id="error").text
    redis_client.hset(ledger.keys.breaker, mapping={"state": "open", "failures": 10})
    operator.post("/controls/reset-breaker", data={"csrf_token": csrf})
    assert redis_client.exists(ledger.keys.breaker) == 0
    actions = [a for a, _, _ in audit_actions(redis_client, ledger)]
    assert actions[:3] == ["reset_breaker", "resume", "pause"]


def test_batch_cancel_behind_confirmation_as_a_background_action(app, operator, ledger, redis_client):
    members = enqueue_batch(ledger, "b7", [number(i) for i in range(3)])
    csrf = token(operator)
    confirm = operator.post("/batches/b7/cancel", data={"csrf_token": csrf})
    assert "batch b7" in el(soup(confirm), id="confirm-text").text
    started = operator.post("/batches/b7/cancel", data={"csrf_token": csrf, "confirmed": "yes"}, follow_redirects=False)
    app.state.console.tasks.join()
    page = soup(operator.get(started.headers["location"]))
    assert el(page, id="task-state").text == "finished" and el(page, id="task-done").text == "3"
    assert [ledger.get(j)["state"] for j in members] == ["cancelled"] * 3
    assert redis_client.hget(ledger.keys.batch("b7"), "cancelled") == "1"  # it takes no new members
    assert operator.post("/batches/none/cancel", data={"csrf_token": csrf}).status_code == 404


def test_audit_log_is_newest_first_and_paged(app, operator, ledger):
    controls = app.state.console.controls
    for i in range(60):
        controls.audit("alice", "test", f"t{i}")
    page = soup(operator.get("/audit"))
    targets = [tr.find_all("td")[3].text for tr in el(el(page, id="audit"), "tbody").find_all("tr")]
    assert targets[:2] == ["t59", "t58"] and len(targets) == 50
    older = soup(operator.get(el(page, id="next")["href"]))
    assert [tr.find_all("td")[3].text for tr in el(el(older, id="audit"), "tbody").find_all("tr")][:1] == ["t9"]
    assert operator.get("/audit?before=zzz").status_code == 400
