"""Console security through the test client: login, one answer for wrong name or password, delay, CSRF, roles."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from console.app import create_app
from console.auth import FREE_FAILURES
from tests.conftest import TEST_API_SECRET
from tests.console.helpers import OPERATOR, VIEWER, csrf_of, el, enqueue, login, number, soup, token


def test_every_page_asks_for_a_login_first(anon):
    for path in (
        "/",
        "/messages",
        "/dead",
        "/held",
        "/suppression",
        "/batches",
        "/controls",
        "/audit",
        "/messages/abc",
        "/overview/stream",
    ):
        response = anon.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


def test_login_then_the_overview(anon):
    response = login(anon, OPERATOR[0], OPERATOR[2])
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = soup(anon.get("/"))
    assert el(page, "h1").text == "Overview" and "alice (operator)" in el(page, id="who").text


def test_wrong_password_and_unknown_user_get_the_same_answer(anon):
    wrong = login(anon, OPERATOR[0], "not it")
    unknown = login(anon, "nobody", "not it")
    assert wrong.status_code == unknown.status_code == 401
    assert el(soup(wrong), id="error").text == el(soup(unknown), id="error").text == "Wrong name or password."
    assert "alice" not in wrong.text and "nobody" not in unknown.text


def test_repeated_failures_make_the_next_tries_wait_longer(app, anon):
    throttle = app.state.console.throttle
    for _ in range(FREE_FAILURES):
        login(anon, "mallory", "guess")
    assert throttle.delay_s("mallory") == 0
    login(anon, "mallory", "guess")
    first = throttle.delay_s("mallory")
    login(anon, "mallory", "guess")
    second = throttle.delay_s("mallory")
    assert 0 < first < second
    started = time.monotonic()
    assert login(anon, "mallory", "guess").status_code == 401
    assert time.monotonic() - started >= second
    assert throttle.delay_s(OPERATOR[0]) == 0  # another name is not slowed down


def test_login_without_its_csrf_token_is_refused(anon):
    anon.get("/login")
    response = anon.post("/login", data={"name": OPERATOR[0], "password": OPERATOR[2]}, follow_redirects=False)
    assert response.status_code == 403
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_post_without_csrf_token_is_403_and_changes_nothing(operator, redis_client, ledger):
    response = operator.post("/controls/pause", data={"lane": "all", "reason": "x"})
    assert response.status_code == 403 and "security token" in el(soup(response), id="error").text
    assert redis_client.hgetall(ledger.keys.pause) == {}
    response = operator.post("/controls/pause", data={"lane": "all", "csrf_token": "forged"})
    assert response.status_code == 403 and redis_client.hgetall(ledger.keys.pause) == {}


def test_viewer_posting_an_action_is_403_and_changes_nothing(viewer, redis_client, ledger):
    job_id = enqueue(ledger, number(7))
    csrf = token(viewer)
    for path, data in (
        ("/controls/pause", {"lane": "all"}),
        (f"/messages/{job_id}/cancel", {}),
        ("/suppression/add", {"numbers": number(7)}),
        ("/controls/reset-breaker", {}),
    ):
        response = viewer.post(path, data={**data, "csrf_token": csrf})
        assert response.status_code == 403, path
        assert "viewers cannot act" in el(soup(response), id="error").text
    assert redis_client.hgetall(ledger.keys.pause) == {}
    assert ledger.get(job_id)["state"] == "queued"
    assert redis_client.scard(ledger.keys.suppressed) == 0


def test_viewer_sees_numbers_masked_and_no_action_buttons(viewer, operator, ledger):
    job_id = enqueue(ledger, "033334445566770")
    for path in (f"/messages/{job_id}", "/messages"):
        page = viewer.get(path).text
        assert "033334445566770" not in page and "0333••••••••770" in page
    assert soup(viewer.get(f"/messages/{job_id}")).find(id="action-cancel") is None
    assert "033334445566770" in operator.get(f"/messages/{job_id}").text


def test_no_action_by_get(operator, redis_client, ledger):
    assert operator.get("/controls/pause").status_code == 405
    assert redis_client.hgetall(ledger.keys.pause) == {}


def test_session_cookie_flags(console_settings, redis_client):
    for host, secure in (("127.0.0.1", False), ("0.0.0.0", True)):
        app = create_app(console_settings, client=redis_client, background=False, host=host)
        with TestClient(app, base_url="https://testserver") as client:
            response = client.get("/login")
            cookie = response.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert ("secure" in cookie) is secure


def test_pages_send_security_headers_and_never_the_api_secret(operator, ledger):
    enqueue(ledger, number(3))
    for path in ("/", "/messages", "/controls", "/audit", "/overview/tiles"):
        response = operator.get(path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert TEST_API_SECRET not in response.text


def test_logout_ends_the_session(operator):
    csrf = csrf_of(operator.get("/"))
    assert operator.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert operator.get("/", follow_redirects=False).status_code == 303


def test_a_user_removed_from_the_list_is_logged_out(app, operator):
    del app.state.console.users[OPERATOR[0]]
    assert operator.get("/", follow_redirects=False).status_code == 303


def test_viewer_login_names_the_role(viewer):
    assert f"{VIEWER[0]} (viewer)" in el(soup(viewer.get("/")), id="who").text


def test_audit_records_logins(operator, redis_client, ledger):
    entries = redis_client.xrange(ledger.keys.audit)
    assert [(e["user"], e["action"]) for _, e in entries] == [("alice", "login")]
    assert json.dumps(entries).count(OPERATOR[2]) == 0


def test_viewer_sees_numbers_masked_in_the_audit_log(operator, viewer):
    operator.post("/suppression/add", data={"csrf_token": token(operator), "numbers": "033334445566770"})
    assert "033334445566770" in operator.get("/audit").text
    page = viewer.get("/audit").text
    assert "033334445566770" not in page and "0333••••••••770" in page
