"""Forwarding final outcomes to an application's own callback, against a real HTTP application.

The test application is an http.server in a thread that verifies every POST with the
`standardwebhooks` package. Intents are written with the shape the ledger's Lua writes
(`Forwards.add`). Time is scaled: timeouts of 1 s, backoffs of 0.1-0.5 s, and retry windows
of seconds instead of 24 hours; the mechanism is the same.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs

from ledger.forwards import Forwards
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import cosmos_cmd, spawn, stop
from worker.forwarding import Forwarder, destination

FORWARDER_CMD = [sys.executable, "-m", "worker.forwarding"]
APP_SECRET = "whsec_" + base64.b64encode(b"test-app-webhook-secret-0123456789").decode()
FAST = {
    "COSMOS_APP_WEBHOOK_SECRET": APP_SECRET,
    "COSMOS_FORWARD_TIMEOUT_S": "1",
    "COSMOS_FORWARD_BACKOFF_BASE_S": "0.1",
    "COSMOS_FORWARD_BACKOFF_MAX_S": "0.5",
    "COSMOS_FORWARD_POLL_S": "0.05",
    "COSMOS_FORWARD_BREAKER_THRESHOLD": "3",
    "COSMOS_FORWARD_BREAKER_OPEN_S": "0.5",
    "COSMOS_FORWARD_THREADS": "8",
}


@dataclass
class Post:
    path: str
    webhook_id: str | None
    verified: bool
    signed: bool
    body: dict


class AppReceiver:
    """A test application: records every POST, verifies it, answers per path.

    /ok 200 · /fail 500 (or 200 once `.healthy`) · /redirect 302 · /hang waits `hang_s` ·
    /hang-once waits `hang_s` on its first request only · /drip sends its headers a byte at a time.
    """

    def __init__(self, secret: str | None = APP_SECRET, port: int | None = None, hang_s: float = 30.0):
        self.port = port or free_port()
        self.webhook = Webhook(secret) if secret else None
        self.hang_s = hang_s
        self.healthy = False
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p in self.posts if p.path == path)

    def of(self, path: str) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.path == path]

    def start(self) -> AppReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = False
                if receiver.webhook is not None:
                    try:
                        receiver.webhook.verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        pass
                with receiver._lock:
                    first = not any(p.path == self.path for p in receiver.posts)
                    receiver.posts.append(
                        Post(
                            self.path,
                            headers.get("webhook-id"),
                            verified,
                            "webhook-signature" in headers,
                            json.loads(body),
                        )
                    )
                if self.path == "/hang" or (self.path == "/hang-once" and first):
                    time.sleep(receiver.hang_s)  # the application hangs
                if self.path == "/drip":  # an answer that never ends: one header byte at a time
                    try:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                        for _ in range(int(receiver.hang_s / 0.2)):
                            self.wfile.write(b"a")
                            time.sleep(0.2)  # the application's drip, not synchronisation
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.url("/ok-after-redirect"))
                elif self.path == "/fail" and not receiver.healthy:
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a hanging handler must not hold the test's teardown
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def app_receiver():
    started: list[AppReceiver] = []

    def start(**kwargs) -> AppReceiver:
        receiver = AppReceiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def forwarder_for(settings_for, redis_client):
    running: list[Forwarder] = []

    def start(**overrides: str) -> Forwarder:
        forwarder = Forwarder(settings_for(**{**FAST, **overrides})).start()
        running.append(forwarder)
        return forwarder

    yield start
    for forwarder in running:
        forwarder.stop(timeout=10)


@pytest.fixture
def store(settings_for, redis_client) -> Forwards:
    return Forwards(redis_client, settings_for(**FAST))


def payload(job_id: str, status: str, **extra) -> dict:
    """The pushed-outcome fields of the contract, as the ledger's Lua writes them."""
    body = {
        "status": status,
        "to": "033334445566770",
        "message_id": f"m-{job_id}" if status in ("delivered", "not_delivered") else None,
        "price": 0.05,
        "message_timestamp": "2026-12-01T20:00:00Z",
        "job_id": job_id,
    }
    body.update(extra)
    return body


def gone(store: Forwards, *fwd_ids: str) -> bool:
    return all(store.get(fwd_id) is None for fwd_id in fwd_ids)


def test_each_final_state_is_posted_once_with_its_own_webhook_id_and_a_valid_signature(
    app_receiver, forwarder_for, store
):
    app = app_receiver()
    finals = [
        ("j1", "delivered", {}),
        ("j2", "not_delivered", {}),
        ("j3", "dead", {"dead_reason": "invalid_to"}),
        ("j4", "expired", {}),
        ("j5", "cancelled", {}),
        ("j4", "delivered", {}),
    ]  # the provider's late word on j4: a new final state, a new forward
    intents = [store.add(job, app.url("/ok"), payload(job, status, **extra)) for job, status, extra in finals]
    forwarder_for()
    wait_for(lambda: gone(store, *(i.fwd_id for i in intents)), timeout=20, what="every forward delivered")

    posts = app.of("/ok")
    assert len(posts) == len(intents)
    assert sorted(p.webhook_id for p in posts) == sorted(i.webhook_id for i in intents)
    assert len({p.webhook_id for p in posts}) == len(intents)
    assert all(p.verified for p in posts)
    by_id = {p.webhook_id: p.body for p in posts}
    for intent in intents:
        assert by_id[intent.webhook_id] == json.loads(intent.payload)
    assert by_id[intents[2].webhook_id]["dead_reason"] == "invalid_to"
    assert store.due_count() == 0


def test_receiver_down_then_up_gets_the_forward_with_the_same_webhook_id(app_receiver, forwarder_for, store):
    port = free_port()
    intents = [store.add(f"j{i}", f"http://127.0.0.1:{port}/ok", payload(f"j{i}", "delivered")) for i in range(3)]
    forwarder_for()
    down_since = time.monotonic()
    # Down: nothing listens on the port. Scaled: 3 s here for a real 60 s, with backoffs and
    # breaker times scaled alike; while its breaker is open one probe at a time goes out.
    wait_for(
        lambda: time.monotonic() - down_since >= 3 and sum((store.get(i.fwd_id) or i).attempts for i in intents) >= 6,
        timeout=30,
        what="repeated failed attempts while the application is down",
    )
    assert all("connection failed" in store.get(i.fwd_id).last_error for i in intents)

    app = app_receiver(port=port)
    wait_for(lambda: gone(store, *(i.fwd_id for i in intents)), timeout=30, what="delivery once the app is up")
    posts = app.of("/ok")
    assert sorted(p.webhook_id for p in posts) == sorted(i.webhook_id for i in intents)
    assert all(p.verified for p in posts)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(app_receiver, forwarder_for, store):
    app = app_receiver()
    intent = store.add("j1", app.url("/redirect"), payload("j1", "delivered"))
    forwarder_for()
    wait_for(lambda: (store.get(intent.fwd_id) or intent).attempts >= 2, timeout=20, what="two failed attempts")
    assert "redirect not followed" in store.get(intent.fwd_id).last_error
    assert app.count("/ok-after-redirect") == 0


def test_a_hanging_receiver_holds_no_delivery_thread(app_receiver, forwarder_for, store):
    hanging = app_receiver(hang_s=30)
    healthy = app_receiver()
    stuck = [store.add(f"h{i}", hanging.url("/hang"), payload(f"h{i}", "delivered")) for i in range(10)]
    fine = [store.add(f"f{i}", healthy.url("/ok"), payload(f"f{i}", "delivered")) for i in range(30)]
    started = time.monotonic()
    forwarder = forwarder_for(COSMOS_FORWARD_THREADS="4")

    # Others are delivered promptly while the hanging application holds its requests open.
    wait_for(lambda: gone(store, *(f.fwd_id for f in fine)), timeout=10, what="forwards to others delivered")
    assert time.monotonic() - started < 10
    # Each POST to the hanging one lets go after the 1 s timeout, long before the 30 s it would hold.
    wait_for(
        lambda: any("no answer" in ((store.get(s.fwd_id) or s).last_error or "") for s in stuck),
        timeout=5,
        what="a hanging POST to time out",
    )
    assert time.monotonic() - started < 8
    began_stop = time.monotonic()
    forwarder.stop(timeout=10)
    assert time.monotonic() - began_stop < 5, "a delivery thread was still held by the hanging receiver"
    assert all(store.get(s.fwd_id) is not None for s in stuck)  # still owed, retried later


def test_an_answer_dripping_byte_by_byte_is_cut_at_the_total_deadline(app_receiver, forwarder_for, store):
    dripping = app_receiver(hang_s=30)
    intent = store.add("d1", dripping.url("/drip"), payload("d1", "delivered"))
    started = time.monotonic()
    forwarder = forwarder_for()
    # Connect 1 s + answer 1 s: every read gets a byte in time, the whole request does not.
    wait_for(
        lambda: "within 2 s" in ((store.get(intent.fwd_id) or intent).last_error or ""),
        timeout=10,
        what="the dripping POST cut at its total deadline",
    )
    assert time.monotonic() - started < 6
    began_stop = time.monotonic()
    forwarder.stop(timeout=10)
    assert time.monotonic() - began_stop < 4


def test_a_failing_destination_gets_its_own_breaker_and_attempts_count_only_real_requests(
    app_receiver, forwarder_for, store
):
    failing = app_receiver()
    healthy = app_receiver()
    bad = [store.add(f"b{i}", failing.url("/fail"), payload(f"b{i}", "delivered")) for i in range(30)]
    good = [store.add(f"g{i}", healthy.url("/ok"), payload(f"g{i}", "delivered")) for i in range(30)]
    forwarder = forwarder_for(COSMOS_FORWARD_BREAKER_OPEN_S="30")
    wait_for(lambda: gone(store, *(g.fwd_id for g in good)), timeout=15, what="forwards to the healthy app")
    wait_for(
        lambda: forwarder.breakers.is_open(destination(failing.url("/fail"))),
        timeout=10,
        what="the failing destination's breaker to open",
    )
    forwarder.stop(timeout=10)
    # Threshold 3, at most 4 in flight at once (half of 8 threads): then the breaker held the rest back.
    assert failing.count("/fail") <= 3 + 4
    assert sum(store.get(b.fwd_id).attempts for b in bad) == failing.count("/fail")


def test_a_forward_is_given_up_after_its_window_listed_and_retried_from_the_cli(
    app_receiver, forwarder_for, store, base_env
):
    app = app_receiver()
    intents = [store.add(f"j{i}", app.url("/fail"), payload(f"j{i}", "expired")) for i in range(2)]
    forwarder = forwarder_for(COSMOS_FORWARD_MAX_AGE_S="1.5")
    wait_for(lambda: store.failed_count() == 2, timeout=20, what="both forwards given up")
    forwarder.stop(timeout=10)
    assert store.due_count() == 0

    env = {**base_env, **FAST}
    listed = subprocess.run(
        cosmos_cmd("forwards", "list", "--json"), env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["fwd_id"] for r in rows) == sorted(i.fwd_id for i in intents)
    assert all(r["last_error"] == "HTTP 500" and r["attempts"] >= 1 for r in rows)

    usage = subprocess.run(cosmos_cmd("forwards", "retry"), env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and store.failed_count() == 2  # bad usage changes nothing

    app.healthy = True
    retried = subprocess.run(
        cosmos_cmd("forwards", "retry", "--all"), env=env, capture_output=True, text=True, timeout=60
    )
    assert retried.returncode == 0 and "2 forward(s)" in retried.stdout
    forwarder_for(COSMOS_FORWARD_MAX_AGE_S="1.5")
    wait_for(lambda: gone(store, *(i.fwd_id for i in intents)), timeout=20, what="retried forwards delivered")
    assert {p.webhook_id for p in app.of("/fail")} == {i.webhook_id for i in intents}


def test_without_the_secret_posts_are_unsigned_and_the_start_warns(app_receiver, forwarder_for, store):
    app = app_receiver(secret=None)
    intent = store.add("j1", app.url("/ok"), payload("j1", "cancelled"))
    with capture_logs() as logs:
        forwarder_for(
            COSMOS_APP_WEBHOOK_SECRET="",
            COSMOS_WEBHOOK_URL="http://127.0.0.1:1/delivery-status",
            COSMOS_WEBHOOK_SECRET="receiver-secret",
        )
    assert any("COSMOS_APP_WEBHOOK_SECRET is not set" in entry["event"] for entry in logs)
    wait_for(lambda: gone(store, intent.fwd_id), timeout=20, what="the unsigned forward delivered")
    [post] = app.of("/ok")
    assert post.webhook_id == intent.webhook_id and not post.signed


def test_a_forwarder_killed_mid_forward_leaves_it_to_another(app_receiver, store, base_env, tmp_path):
    app = app_receiver(hang_s=20)
    intent = store.add("j1", app.url("/hang-once"), payload("j1", "delivered"))
    env = {**base_env, **FAST}
    first = spawn(FORWARDER_CMD, env, tmp_path / "forwarder-1.log")
    try:
        wait_for(lambda: app.count("/hang-once") == 1, timeout=30, what="the first forwarder's POST in flight")
        stop(first, signal.SIGKILL)
        second = spawn(FORWARDER_CMD, env, tmp_path / "forwarder-2.log")
        try:
            # The dead claim's grace (1 s + 1 s + 5 s) passes, then the second forwarder sends it.
            wait_for(lambda: gone(store, intent.fwd_id), timeout=30, what="delivery by the second forwarder")
        finally:
            stop(second)
    finally:
        stop(first, signal.SIGKILL)
    posts = app.of("/hang-once")
    assert len(posts) == 2 and {p.webhook_id for p in posts} == {intent.webhook_id}
    assert all(p.verified for p in posts)
    assert "forward delivered" in (tmp_path / "forwarder-2.log").read_text()


def test_bad_secret_is_refused_naming_the_variable(settings_for):
    from config.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="^COSMOS_APP_WEBHOOK_SECRET:"):
        load_settings(_env_file=None, COSMOS_APP_WEBHOOK_SECRET="whsec_not base64!")


def test_pipeline_final_states_reach_the_application_signed_and_the_events_show_them(
    app_receiver, sandbox, receiver, workers, settings_for, store, base_env, pipeline_env, tmp_path
):
    """End to end: the ledger's own intents (Lua), a real worker (whose forwarder posts them), receiver, sandbox."""
    from producers.events import EventFeed
    from producers.producer import SmsProducer

    app = app_receiver()
    workers.start(**receiver.env, **FAST)
    sandbox.script("033334445566771", "failed")
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url, **receiver.env))
    delivered = producer.send_sms(to="033334445566770", sender="F", text="hi", callback=app.url("/ok"))
    dead = producer.send_sms(to="033334445566771", sender="F", text="hi", callback=app.url("/ok"))
    wait_for(lambda: app.count("/ok") >= 2, timeout=60, what="both outcomes forwarded to the application")
    bodies = {p.body["job_id"]: p for p in app.of("/ok")}
    assert set(bodies) == {delivered, dead} and all(p.verified for p in bodies.values())
    assert bodies[delivered].body["status"] == "delivered" and bodies[delivered].body["message_id"]
    assert (bodies[dead].body["status"], bodies[dead].body["dead_reason"]) == ("dead", "failed")
    assert len({p.webhook_id for p in bodies.values()}) == 2
    wait_for(lambda: store.due_count() == 0, timeout=10, what="no forward left due")

    events = [e for e in EventFeed(settings_for(), client=store.redis).after("0-0", 1000) if e.job_id == delivered]
    assert [e.state for e in events][-1] == "delivered"
    assert [e.state for e in events][:1] == ["queued"]


def test_a_claim_hides_a_forward_for_the_grace_only(store, settings_for):
    intent = store.add("j1", "http://app.example/cb", payload("j1", "delivered"))
    grace = store.settings.forward_claim_grace_s
    assert [f.fwd_id for f in store.claim()] == [intent.fwd_id]
    assert store.claim() == []  # another worker does not see it meanwhile
    # Once the grace has passed on the ledger's clock it is due again: its worker died.
    late = Forwards(store.redis, settings_for(**FAST, COSMOS_TEST_CLOCK_OFFSET_S=str(grace + 1)))
    assert [f.fwd_id for f in late.claim()] == [intent.fwd_id]


def test_claims_are_bounded_steps(store):
    for i in range(600):
        store.add(f"j{i}", "http://app.example/cb", payload(f"j{i}", "delivered"))
    assert len(store.claim(limit=10_000)) == 500
    assert len(store.claim(limit=10_000)) == 100


def test_give_up_after_the_window_and_retry_opens_a_new_one(store, settings_for, redis_client):
    # The same intents seen on the ledger's clock moved past the retry window.
    window = store.settings.forward_max_age_s
    expired = Forwards(redis_client, settings_for(**FAST, COSMOS_TEST_CLOCK_OFFSET_S=str(window + 1)))
    intent = store.add("j1", "http://app.example/cb", payload("j1", "delivered"))
    assert store.reschedule(intent.fwd_id, 1.0, "HTTP 500") == "rescheduled"
    held = store.reschedule(intent.fwd_id, 1.0, "", attempted=False)
    assert held == "rescheduled" and store.get(intent.fwd_id).attempts == 1  # a held-back try is no attempt
    assert expired.reschedule(intent.fwd_id, 1.0, "HTTP 500") == "failed"
    assert store.due_count() == 0 and [f.fwd_id for f in store.failed_page()] == [intent.fwd_id]
    assert store.retry(["nope", intent.fwd_id]) == 1
    assert store.failed_count() == 0 and store.due_count() == 1
    assert store.reschedule(intent.fwd_id, 1.0, "HTTP 500") == "rescheduled"


def test_breaker_opens_per_destination_probes_one_at_a_time_and_closes_on_success():
    from worker.forwarding import DestinationBreakers

    breakers = DestinationBreakers(threshold=2, open_s=10, max_open_s=100, threads=8, busy_s=0.5)
    assert breakers.acquire("a:80", 0) == 0 and breakers.acquire("a:80", 0) == 0
    breakers.release("a:80", False, 1)
    breakers.release("a:80", False, 1)
    assert breakers.acquire("a:80", 2) == pytest.approx(9)  # open until 11
    assert breakers.acquire("b:80", 2) == 0  # another destination is untouched
    assert breakers.acquire("a:80", 11) == 0  # half-open: one probe
    assert breakers.acquire("a:80", 11) > 0
    breakers.release("a:80", False, 12)  # the probe failed: open again, twice as long
    assert breakers.acquire("a:80", 12) == pytest.approx(20)
    assert breakers.acquire("a:80", 32) == 0
    breakers.release("a:80", True, 33)
    assert [breakers.acquire("a:80", 33) for _ in range(4)] == [0, 0, 0, 0]  # closed: half the pool
    assert breakers.acquire("a:80", 33) > 0


def test_an_inbound_message_is_posted_to_the_inbound_url_signed(
    app_receiver, forwarder_for, settings_for, redis_client
):
    from ledger.store import Ledger

    app = app_receiver()
    ledger = Ledger(redis_client, settings_for(**FAST, COSMOS_INBOUND_URL=app.url("/ok")))
    entry = ledger.record_inbound("044770090012345", "COSMOS", "Привет STOP?", "")
    forwarder_for()
    [post] = wait_for(lambda: app.of("/ok"), timeout=20, what="the inbound POST")
    assert post.verified and post.webhook_id == f"msg_in.{entry}"
    assert {k: post.body[k] for k in ("from", "to", "text")} == {
        "from": "044770090012345",
        "to": "COSMOS",
        "text": "Привет STOP?",
    }
    assert post.body["received_at"].endswith("Z")


def refused(store: Forwards, fwd_id: str) -> bool:
    forward = store.get(fwd_id)
    return forward is not None and forward.failed_ts is not None and forward.last_error == "destination_refused"


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/hook"])
def test_a_link_local_callback_is_refused_at_once_and_listed(forwarder_for, store, url):
    intent = store.add("meta", url, payload("meta", "delivered"))
    forwarder_for()
    wait_for(lambda: refused(store, intent.fwd_id), timeout=10, what="the forward refused and listed")
    assert [f.fwd_id for f in store.failed_page()] == [intent.fwd_id]


def test_private_callbacks_are_refused_only_when_the_operator_asks(app_receiver, forwarder_for, store):
    app = app_receiver()
    inside = store.add("p1", app.url("/ok"), payload("p1", "delivered"))
    denying = forwarder_for(COSMOS_FORWARD_DENY_PRIVATE="1")
    wait_for(lambda: refused(store, inside.fwd_id), timeout=10, what="the loopback forward refused")
    assert app.count("/ok") == 0
    denying.stop(timeout=10)  # else it may claim the next forward too, and refuse it
    allowed = store.add("p2", app.url("/ok"), payload("p2", "delivered"))
    forwarder_for()  # default 0: single-host and private-network deployments keep working
    wait_for(lambda: gone(store, allowed.fwd_id), timeout=10, what="the loopback forward delivered")


def test_forwarded_posts_never_use_a_proxy_from_the_environment(app_receiver, forwarder_for, store, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    app = app_receiver()
    intent = store.add("x1", app.url("/ok"), payload("x1", "delivered"))
    forwarder_for()
    wait_for(lambda: gone(store, intent.fwd_id), timeout=10, what="the forward delivered directly")


def _redis_work(client) -> tuple[int, float]:
    """The forwarder's calls to Redis (its scripts, and MULTI for a completion's transaction: the commands
    inside them are counted apart by Redis) and the CPU seconds Redis has used."""
    stats = client.info("commandstats")
    calls = sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_evalsha", "cmdstat_multi"))
    cpu = client.info("cpu")
    return calls, cpu["used_cpu_sys"] + cpu["used_cpu_user"]


def test_a_slow_destination_costs_few_redis_calls_per_post(app_receiver, forwarder_for, store, redis_client):
    slow = app_receiver(hang_s=3)  # answers every POST after 3 s
    for i in range(2000):
        store.add(f"s{i}", slow.url("/hang"), payload(f"s{i}", "delivered"))
    forwarder_for(COSMOS_FORWARD_TIMEOUT_S="5", COSMOS_FORWARD_POLL_S="0.5", COSMOS_FORWARD_THREADS="16")
    wait_for(lambda: slow.count("/hang") >= 8, timeout=10, what="the first POSTs")  # past the start-up
    calls_before, cpu_before = _redis_work(redis_client)
    started, posts = time.monotonic(), slow.count("/hang")
    wait_for(lambda: slow.count("/hang") >= posts + 24, timeout=30, interval=0.2, what="three rounds of POSTs")
    calls_after, cpu_after = _redis_work(redis_client)
    calls, cpu = calls_after - calls_before, cpu_after - cpu_before
    made, elapsed = slow.count("/hang") - posts, time.monotonic() - started
    print(f"\n[slow destination] {calls} Redis calls for {made} POSTs; Redis CPU {cpu / elapsed:.2%} of a core")
    assert calls / made <= 3, f"{calls} Redis calls for {made} POSTs"
    assert cpu / elapsed < 0.02, f"Redis used {cpu / elapsed:.1%} of a core"


def test_a_jobs_forwards_never_send_an_older_state_after_a_newer_one(app_receiver, forwarder_for, store, settings_for):
    app = app_receiver()  # /fail answers 500 until healthy
    producer = SmsProducer(
        settings_for(**FAST, COSMOS_WEBHOOK_URL="http://127.0.0.1:9/delivery-status", COSMOS_WEBHOOK_SECRET="s" * 32)
    )
    ledger, to = producer.ledger, "033334445566770"
    job_id = producer.send_sms(to, "F", "late word", callback=app.url("/fail"))
    for kind, status in (("ambiguous", "timeout"), ("permanent", "failed")):  # unknown, then refused: dead
        assert ledger.begin(job_id, "w", count_delivery=True).verdict == "go"
        ledger.finish(job_id, "w", kind, status=status, http=400)
    forwarder_for()
    wait_for(lambda: app.count("/fail") >= 1, timeout=10, what="the dead forward's first (failed) POST")
    # The provider's late word: delivered after all. Its forward is written while `dead` waits to be retried.
    assert ledger.apply_receipt(job_id, to=to, status="delivered", message_id="M-1", price=0.01, timestamp="") == "late"
    app.healthy = True

    wait_for(lambda: store.due_count() == 0, timeout=15, what="every forward of the job done or dropped")
    answered = [p.body["status"] for p in app.of("/fail")]
    assert "delivered" in answered
    assert "dead" not in answered[answered.index("delivered") :], answered
    assert [p.body.get("sequence") for p in app.of("/fail") if p.body["status"] == "delivered"] == [2]
