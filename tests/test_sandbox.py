"""The COSMOS sandbox as a real process over real HTTP: statuses, limits, receipts, faults and inspection."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from cosmos_api.rules import MAX_BODY_BYTES, body_size
from tests.conftest import TEST_API_KEY, TEST_API_SECRET
from tests.support.polling import wait_for

NUMBER = "033334445566770"
MESSAGE_ID = re.compile(r"^[A-Za-z]{2}_[0-9]{5}-[0-9]{6}$")
TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")


def body(**overrides) -> dict:
    """The spec's example request with the test credentials; None removes a field."""
    message = {
        "api_key": TEST_API_KEY,
        "api_secret": TEST_API_SECRET,
        "to": NUMBER,
        "from": "Company Name 123",
        "text": "Hello world!",
    }
    message.update(overrides)
    return {k: v for k, v in message.items() if v is not None}


def raw(message: dict) -> bytes:
    """The body as the worker sends it: compact JSON, UTF-8, non-ASCII unescaped."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def post(sandbox, data: bytes | dict, timeout: float | tuple = 10, session=None) -> requests.Response:
    payload = data if isinstance(data, bytes) else raw(data)
    return (session or requests).post(
        sandbox.sms_url,
        data=payload,
        timeout=timeout,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )


class Receiver:
    """A webhook endpoint on loopback recording every POST; the first `fail_first` get HTTP 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                data = self.rfile.read(length)
                with receiver._lock:
                    receiver.calls.append(
                        {"path": self.path, "body": json.loads(data), "content_type": self.headers.get("Content-Type")}
                    )
                    failing = len(receiver.calls) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path_and_query: str) -> str:
        return f"http://127.0.0.1:{self.port}{path_and_query}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for r in made:
        r.stop()


# --- the spec's request and answers ------------------------------------------------------------


def test_spec_example_request_gets_the_spec_example_response_shape(sandbox):
    response = post(sandbox, body(callback="http://your-site.com/response?param1=value1"))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"status", "message_id", "price"}
    assert answer["status"] == "ok"
    assert MESSAGE_ID.match(answer["message_id"]), answer
    assert isinstance(answer["price"], float)


def test_each_acceptance_gets_its_own_message_id_and_the_configured_price(sandbox_factory):
    sandbox = sandbox_factory("--price", "0.05")
    with requests.Session() as session:
        ids = [post(sandbox, body(), session=session).json() for _ in range(50)]
    assert len({a["message_id"] for a in ids}) == 50
    assert all(a["price"] == 0.05 for a in ids)


def test_send_path_without_trailing_slash_is_accepted(sandbox):
    response = requests.post(f"{sandbox.api_url}/sms", json=body(), timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


BAD_REQUESTS: list[tuple[str, int, bytes | dict]] = [
    ("invalid_to", 400, body(to="33334445566770")),
    ("invalid_to", 400, body(to=33334445566770)),
    ("invalid_to", 400, body(to="0333344455667701")),
    ("invalid_from", 400, body(**{"from": "   "})),
    ("invalid_from", 400, body(**{"from": 5})),
    ("invalid_text", 400, body(text="")),
    ("invalid_text", 400, body(text="x" * 180)),
    ("invalid_text", 400, body(text="é" * 179 + "😀")),
    ("invalid_callback", 400, body(callback="ftp://your-site.com/response")),
    ("invalid_callback", 400, body(callback=7)),
    ("invalid_json", 400, b'{"api_key": '),
    ("invalid_json", 400, b'["not", "an", "object"]'),
    ("invalid_json", 400, b"\xff\xfe not utf-8"),
    ("invalid_json", 400, b"[" * 3000 + b"]" * 1000),
    ("invalid_text", 400, json.dumps(body(text="\ud800")).encode()),
    ("unauthorized", 401, json.dumps(body(api_key="\udfff")).encode()),
    ("unauthorized", 401, body(api_secret="wrong")),
    ("unauthorized", 401, body(api_key=None)),
    ("unauthorized", 401, body(api_secret=123)),
    ("large_request", 413, body(text="x" * 5000)),
]


@pytest.mark.parametrize(
    "status, http, data", BAD_REQUESTS, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(BAD_REQUESTS)]
)
def test_bad_requests_get_their_cosmos_status_and_http_code(sandbox, status, http, data):
    response = post(sandbox, data)

    assert (response.status_code, response.json()) == (http, {"status": status})
    assert response.headers["Content-Type"] == "application/json"
    assert sandbox.stats()["accepted"] == 0


MAGIC = [
    ("099900000000001", 400, "failed"),
    ("099900000000002", 400, "spam"),
    ("099900000000003", 400, "blacklist"),
    ("099900000000004", 500, "internal_error"),
    ("099900000000005", 408, "timeout"),
]


@pytest.mark.parametrize("to, http, status", MAGIC)
def test_magic_numbers_get_their_status_and_http_code(sandbox, to, http, status):
    response = post(sandbox, body(to=to))

    assert (response.status_code, response.json()) == (http, {"status": status})
    assert sandbox.count(to, "Hello world!") == 0


def test_checks_run_in_the_documented_order(sandbox):
    # Size before JSON, JSON before credentials, credentials before fields, fields before magic.
    assert post(sandbox, b"{" + b" " * MAX_BODY_BYTES).json() == {"status": "large_request"}
    assert post(sandbox, b"nonsense").json() == {"status": "invalid_json"}
    assert post(sandbox, body(api_secret="wrong", to="bad")).json() == {"status": "unauthorized"}
    assert post(sandbox, body(to="bad", text="")).json() == {"status": "invalid_to"}
    assert post(sandbox, body(to="099900000000001", text="")).json() == {"status": "invalid_text"}


def _body_of_size(size: int) -> dict:
    message = body(**{"from": ""})
    message["from"] = "F" * (size - body_size(message))
    assert body_size(message) == size
    return message


def test_body_of_4096_bytes_is_accepted_and_4097_is_large_request(sandbox):
    at_limit, over = _body_of_size(MAX_BODY_BYTES), _body_of_size(MAX_BODY_BYTES + 1)
    assert len(raw(at_limit)) == 4096 and len(raw(over)) == 4097

    assert post(sandbox, at_limit).status_code == 200
    response = post(sandbox, over)
    assert (response.status_code, response.json()) == (413, {"status": "large_request"})
    assert sandbox.stats()["accepted"] == 1


def test_a_body_far_over_aiohttps_own_limit_still_gets_large_request(sandbox):
    response = post(sandbox, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert (response.status_code, response.json()) == (413, {"status": "large_request"})


# --- credentials ----------------------------------------------------------------------------------


def test_sandbox_credentials_override_the_worker_ones_and_the_secret_is_never_shown(sandbox_factory):
    sandbox = sandbox_factory(env={"COSMOS_SANDBOX_API_KEY": "own-key", "COSMOS_SANDBOX_API_SECRET": "own-SECRET-xyz"})

    assert post(sandbox, body()).status_code == 401
    assert post(sandbox, body(api_key="own-key", api_secret="own-SECRET-xyz")).status_code == 200

    shown = json.dumps([sandbox.requests(), sandbox.stats(), sandbox.faults(), sandbox.messages()]) + sandbox.log()
    assert "own-SECRET-xyz" not in shown and TEST_API_SECRET not in shown
    assert [r["auth_ok"] for r in sandbox.requests()] == [False, True]


# --- delivery receipts ----------------------------------------------------------------------------


def test_receipt_reaches_the_callback_with_exactly_the_spec_fields(sandbox_factory, receiver):
    sandbox = sandbox_factory("--receipt-delay-s", "0.05", "--price", "0.25")
    webhook = receiver()
    callback = webhook.url("/delivery-status?param1=value1&token=a%2Fb%3D%3D&sig=x~y")

    answer = post(sandbox, body(callback=callback)).json()
    wait_for(lambda: webhook.calls, what="the receipt")

    call = webhook.calls[0]
    assert call["path"] == "/delivery-status?param1=value1&token=a%2Fb%3D%3D&sig=x~y"
    assert call["content_type"].startswith("application/json")
    receipt = call["body"]
    assert set(receipt) == {"status", "to", "message_id", "price", "message_timestamp"}
    assert receipt["status"] == "delivered"
    assert receipt["to"] == NUMBER
    assert receipt["message_id"] == answer["message_id"]
    assert receipt["price"] == 0.25
    assert TIMESTAMP.match(receipt["message_timestamp"])
    pushed = datetime.strptime(receipt["message_timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - pushed).total_seconds()) < 10
    wait_for(lambda: sandbox.stats()["receipts_sent"] == 1, what="receipts_sent to count it")


def test_failed_callbacks_are_retried_until_one_succeeds(sandbox_factory, receiver):
    sandbox = sandbox_factory("--receipt-delay-s", "0")
    webhook = receiver(fail_first=2)

    post(sandbox, body(callback=webhook.url("/hook")))
    wait_for(lambda: len(webhook.calls) == 3, timeout=10, what="two failures and a success")

    attempts = sandbox.receipts()
    assert [(a["attempt"], a["http"], a["ok"]) for a in attempts] == [(1, 500, False), (2, 500, False), (3, 200, True)]
    stats = sandbox.stats()
    assert (stats["receipts_sent"], stats["receipts_failed"]) == (1, 0)


def test_receipt_is_abandoned_after_its_retries(sandbox_factory, receiver):
    sandbox = sandbox_factory("--receipt-delay-s", "0", "--receipt-retries", "1")
    webhook = receiver(fail_first=100)

    post(sandbox, body(callback=webhook.url("/hook")))
    wait_for(lambda: sandbox.stats()["receipts_failed"] == 1, timeout=10, what="the receipt to be abandoned")

    assert len(webhook.calls) == 2
    assert sandbox.stats()["receipts_sent"] == 0


def test_unreachable_callback_counts_as_a_failed_attempt(sandbox_factory):
    sandbox = sandbox_factory("--receipt-delay-s", "0", "--receipt-retries", "0")
    from tests.support.ports import free_port

    post(sandbox, body(callback=f"http://127.0.0.1:{free_port()}/nobody-listens"))
    wait_for(lambda: sandbox.stats()["receipts_failed"] == 1, what="the failed receipt")
    (attempt,) = sandbox.receipts()
    assert attempt["http"] is None and attempt["error"]


def test_magic_number_is_accepted_but_its_receipt_is_not_delivered(sandbox_factory, receiver):
    sandbox = sandbox_factory("--receipt-delay-s", "0")
    webhook = receiver()

    response = post(sandbox, body(to="099900000000007", callback=webhook.url("/hook")))

    assert response.status_code == 200 and response.json()["status"] == "ok"
    wait_for(lambda: webhook.calls, what="the receipt")
    assert webhook.calls[0]["body"]["status"] == "not_delivered"
    assert webhook.calls[0]["body"]["to"] == "099900000000007"


def test_not_delivered_share_of_one_makes_every_receipt_not_delivered(sandbox_factory, receiver):
    sandbox = sandbox_factory("--receipt-delay-s", "0")
    webhook = receiver()
    sandbox.set_faults(not_delivered_share=1.0)

    for _ in range(3):
        post(sandbox, body(callback=webhook.url("/hook")))
    wait_for(lambda: len(webhook.calls) == 3, what="three receipts")
    assert {c["body"]["status"] for c in webhook.calls} == {"not_delivered"}


def test_no_callback_means_no_receipt(sandbox):
    post(sandbox, body())
    assert sandbox.stats()["receipts_pending"] == 0
    assert sandbox.receipts() == []


# --- scripted outcomes and faults -----------------------------------------------------------------


def test_scripted_outcomes_are_consumed_in_order_then_normal_behaviour_resumes(sandbox):
    sandbox.script(NUMBER, "internal_error", "timeout", "ok", "failed", "invalid_text", "unauthorized")

    answers = [post(sandbox, body()) for _ in range(7)]

    assert [(a.status_code, a.json()["status"]) for a in answers] == [
        (500, "internal_error"),
        (408, "timeout"),
        (200, "ok"),
        (400, "failed"),
        (400, "invalid_text"),
        (401, "unauthorized"),
        (200, "ok"),
    ]
    assert sandbox.count(NUMBER, "Hello world!") == 2
    assert [r["source"] for r in sandbox.requests()] == ["script"] * 6 + ["normal"]


def test_a_script_only_touches_its_own_number(sandbox):
    sandbox.script(NUMBER, "blacklist")
    assert post(sandbox, body(to="033334445566771")).json()["status"] == "ok"
    assert post(sandbox, body()).json() == {"status": "blacklist"}


def test_drop_closes_the_connection_without_accepting(sandbox):
    sandbox.script(NUMBER, "drop")

    with pytest.raises(requests.ConnectionError):
        post(sandbox, body())

    stats = sandbox.stats()
    assert (stats["accepted"], stats["drops"], stats["requests"]) == (1 - 1, 1, 1)
    assert sandbox.requests()[-1]["http"] is None
    assert post(sandbox, body()).status_code == 200  # the next request is served normally


def test_accept_drop_accepts_and_sends_the_receipt_but_never_answers(sandbox, receiver):
    webhook = receiver()
    sandbox.set_faults(receipt_delay_s=0)
    sandbox.script(NUMBER, "accept_drop")

    with pytest.raises(requests.ConnectionError):
        post(sandbox, body(callback=webhook.url("/hook")))

    assert sandbox.count(NUMBER, "Hello world!") == 1
    assert sandbox.stats()["drops"] == 1
    wait_for(lambda: webhook.calls, what="the receipt of the dropped-but-accepted message")
    assert webhook.calls[0]["body"]["message_id"] == sandbox.messages()[-1]["message_id"]


def test_stall_accepts_at_once_and_answers_late(sandbox):
    sandbox.script(NUMBER, "stall 3")

    with pytest.raises(requests.ReadTimeout):
        post(sandbox, body(), timeout=(5, 0.5))

    assert sandbox.count(NUMBER, "Hello world!") == 1


def test_stall_answer_arrives_after_the_stall(sandbox):
    sandbox.script(NUMBER, "stall 1")

    started = time.monotonic()
    response = post(sandbox, body(), timeout=10)

    assert time.monotonic() - started >= 1.0
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert sandbox.stats()["accepted"] == 1


def test_random_faults_are_transient_and_never_accept(sandbox_factory):
    sandbox = sandbox_factory("--fault-rate", "1.0", "--seed", "7")
    kinds = []
    for _ in range(40):
        try:
            kinds.append(post(sandbox, body()).json()["status"])
        except requests.ConnectionError:
            kinds.append("drop")

    assert set(kinds) == {"internal_error", "timeout", "drop"}
    assert sandbox.stats()["accepted"] == 0
    sandbox.set_faults(fault_rate=0)
    assert post(sandbox, body()).status_code == 200


def test_outage_answers_internal_error_until_it_ends(sandbox):
    sandbox.outage(60)
    response = post(sandbox, body())
    assert (response.status_code, response.json()) == (500, {"status": "internal_error"})

    sandbox.outage(0)
    assert post(sandbox, body()).status_code == 200

    sandbox.outage(0.3)
    assert post(sandbox, body()).status_code == 500
    wait_for(lambda: post(sandbox, body()).status_code == 200, what="the short outage to end by itself")


def test_no_number_answers_unauthorized_any_more(sandbox):
    """099900000000006 is not a 401 number: 401 is about the account, not a number."""
    response = post(sandbox, body(to="099900000000006"))
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_unauthorized_window_refuses_every_request_of_the_account_until_it_ends(sandbox):
    assert sandbox.unauthorized(60)["remaining_s"] > 59
    answers = [post(sandbox, body(to=to)) for to in (NUMBER, "033334445566771", "099900000000001")]
    assert [(a.status_code, a.json()) for a in answers] == [(401, {"status": "unauthorized"})] * 3
    assert [(e["source"], e["auth_ok"]) for e in sandbox.requests()] == [("unauthorized", False)] * 3
    assert sandbox.messages() == []

    assert sandbox.unauthorized(0)["remaining_s"] == 0
    assert post(sandbox, body()).status_code == 200

    sandbox.unauthorized(0.3)
    assert post(sandbox, body()).status_code == 401
    wait_for(lambda: post(sandbox, body()).status_code == 200, what="the short unauthorized window to end")


@pytest.mark.parametrize("seconds", [-1, 86_401, "5", True, None])
def test_unauthorized_window_refuses_a_bad_length(sandbox, seconds):
    response = requests.post(f"{sandbox.base_url}/_sandbox/unauthorized", json={"seconds": seconds}, timeout=10)
    assert response.status_code == 400 and "seconds" in response.json()["error"]


def test_unauthorized_option_starts_the_sandbox_refusing_the_account(sandbox_factory):
    refusing = sandbox_factory("--unauthorized-s", "600")
    assert post(refusing, body()).status_code == 401
    assert refusing.unauthorized(0)["remaining_s"] == 0
    assert post(refusing, body()).status_code == 200


def test_throughput_limit_answers_spam_beyond_the_limit(sandbox):
    sandbox.set_faults(throughput_limit=5)

    with requests.Session() as session:
        statuses = [post(sandbox, body(), session=session).json()["status"] for _ in range(20)]

    assert statuses[:5] == ["ok"] * 5
    assert "spam" in statuses[5:]
    assert sandbox.stats()["by_status"]["spam"] == statuses.count("spam")


def test_latency_delays_every_answer_without_blocking_other_requests(sandbox_factory):
    sandbox = sandbox_factory("--latency-ms", "500")

    def timed(data):
        started = time.monotonic()
        post(sandbox, data)
        return time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        durations = list(pool.map(timed, [body(), body(), body(to="bad"), b"nonsense"]))
    total = time.monotonic() - started

    assert min(durations) >= 0.5
    assert total < 1.5, f"four 0.5 s answers took {total:.2f} s: requests were served one by one"


# --- inspection and control -----------------------------------------------------------------------


def test_request_log_stays_bounded_while_counters_count_everything(sandbox):
    with requests.Session() as session:
        for i in range(1100):
            post(sandbox, body(text=f"n{i}"), session=session)

    log = sandbox.requests(limit=5000)
    stats = sandbox.stats()
    assert len(log) == 1000
    assert (stats["requests"], stats["accepted"], stats["by_status"]) == (1100, 1100, {"ok": 1100})
    assert sum(stats["per_second"].values()) == 1100
    assert 0 < stats["max_per_second"] <= 1100
    assert len(sandbox.messages(limit=10_000)) == 1100
    assert [m["text"] for m in sandbox.messages(limit=2)] == ["n1098", "n1099"]


def test_accepted_counts_pairs_and_duplicates(sandbox):
    post(sandbox, body(text="one"))
    post(sandbox, body(text="one"))
    post(sandbox, body(text="two"))

    accepted = sandbox.accepted()
    assert accepted["total"] == 3
    assert accepted["duplicates"] == 1
    assert sorted((c["text"], c["count"]) for c in accepted["counts"]) == [("one", 2), ("two", 1)]
    assert sandbox.count(NUMBER, "one") == 2
    assert sandbox.count(NUMBER, "three") == 0


def test_messages_log_keeps_what_was_accepted(sandbox):
    answer = post(sandbox, body(callback="http://example.invalid/hook?x=1")).json()

    (message,) = sandbox.messages()
    assert message["message_id"] == answer["message_id"]
    assert {k: message[k] for k in ("to", "from", "text", "callback", "price")} == {
        "to": NUMBER,
        "from": "Company Name 123",
        "text": "Hello world!",
        "callback": "http://example.invalid/hook?x=1",
        "price": 0.0,
    }
    assert isinstance(message["at"], float)


def test_request_log_entries_have_the_documented_fields(sandbox):
    post(sandbox, body(api_secret="nope"))
    (entry,) = sandbox.requests()
    assert {"at", "to", "http", "status", "outcome", "latency_ms", "auth_ok"} <= set(entry)
    assert (entry["to"], entry["http"], entry["status"], entry["auth_ok"]) == (NUMBER, 401, "unauthorized", False)


def test_faults_can_be_read_and_changed_at_run_time(sandbox):
    assert sandbox.faults()["throughput_limit"] == 0

    settings = sandbox.set_faults(price=0.5, latency_ms=1, jitter_ms=2)

    assert (settings["price"], settings["latency_ms"], settings["jitter_ms"]) == (0.5, 1.0, 2.0)
    assert sandbox.faults() == settings
    assert post(sandbox, body()).json()["price"] == 0.5


def test_reset_clears_counters_logs_scripts_and_outage(sandbox):
    post(sandbox, body())
    sandbox.script(NUMBER, "failed")
    sandbox.outage(60)

    sandbox.reset()

    stats = sandbox.stats()
    assert (stats["requests"], stats["accepted"], stats["by_status"]) == (0, 0, {})
    assert sandbox.requests() == [] and sandbox.messages() == [] and sandbox.accepted()["counts"] == []
    assert post(sandbox, body()).status_code == 200


@pytest.mark.parametrize(
    "path, payload",
    [
        ("script", {"to": NUMBER, "outcomes": ["explode"]}),
        ("script", {"to": NUMBER, "outcomes": ["stall soon"]}),
        ("script", {"to": "12", "outcomes": ["ok"]}),
        ("script", {"to": NUMBER, "outcomes": "ok"}),
        ("faults", {"fault_rate": 2}),
        ("faults", {"latency_ms": "fast"}),
        ("faults", {"colour": "red"}),
        ("outage", {"seconds": -1}),
        ("outage", {}),
        ("outage", [1]),
    ],
)
def test_bad_control_input_is_a_400_with_a_json_error(sandbox, path, payload):
    response = requests.post(f"{sandbox.base_url}/_sandbox/{path}", json=payload, timeout=10)
    assert response.status_code == 400
    assert "error" in response.json()


def test_bad_limit_and_non_json_control_bodies_are_400(sandbox):
    assert requests.get(f"{sandbox.base_url}/_sandbox/requests?limit=x", timeout=10).status_code == 400
    assert requests.get(f"{sandbox.base_url}/_sandbox/messages?limit=0", timeout=10).status_code == 400
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", data=b"{", timeout=10)
    assert response.status_code == 400 and "error" in response.json()


def test_hostile_input_and_faults_leave_no_traceback_in_the_sandbox_log(sandbox):
    for _, _, data in BAD_REQUESTS:
        post(sandbox, data)
    sandbox.script(NUMBER, "drop", "accept_drop", "stall 0.1")
    for _ in range(3):
        try:
            post(sandbox, body())
        except requests.ConnectionError:
            pass
    assert post(sandbox, body()).status_code == 200

    log = sandbox.log()
    assert "Traceback" not in log and "Error handling request" not in log, log
