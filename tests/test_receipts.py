"""The delivery-status receiver: real receiver, worker and sandbox processes on the test's private Redis."""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cosmos_api.callback_token import callback_url, verify
from ledger.stats import stats
from ledger.store import Ledger
from producers.producer import SmsProducer
from receipts import create_app
from receipts.ratelimit import TokenBuckets
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import ROOT, cosmos_cmd, spawn, stop
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET

TO = "033334445566770"
OTHER_TO = "033334445566771"
NOT_DELIVERED_TO = "099900000000007"
FAILED_TO = "099900000000001"
OWNER = "test-owner"
OLD_SECRET = "old-webhook-secret-before-rotation"
RECEIPT_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


# --- helpers -------------------------------------------------------------------------------


def receipt(
    message_id: str = "M-1",
    *,
    to: str = TO,
    status: str = "delivered",
    price: float = 0.0,
    timestamp: str = "2016-04-05 09:22:57",
) -> dict:
    return {"status": status, "to": to, "message_id": message_id, "price": price, "message_timestamp": timestamp}


def post(receiver, job_id: str, body, *, secret: str = TEST_WEBHOOK_SECRET, **kwargs) -> requests.Response:
    """POST a receipt to the receiver with the job's token, as COSMOS would."""
    url = callback_url(receiver.url, job_id, secret, expires_ts=time.time() + 3600)
    if isinstance(body, dict):
        kwargs["json"] = body
    else:
        kwargs["data"] = body
    return requests.post(url, timeout=30, **kwargs)


def sent_job(producer, message_id: str = "M-1", *, to: str = TO, price: float = 0.01) -> str:
    """A job recorded as `sent` with `message_id`, without a worker: the ledger calls a worker makes."""
    job_id = producer.send_sms(to=to, sender="F", text="receipt me")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    result, _ = producer.ledger.finish(
        job_id, OWNER, "accepted", status="ok", http=200, message_id=message_id, price=price
    )
    assert result == "sent"
    return job_id


def snapshot(client: redis.Redis, prefix: str) -> dict:
    """Every key of this test's prefix with its value, to prove a request changed nothing."""
    readers = {
        "hash": client.hgetall,
        "string": client.get,
        "set": client.smembers,
        "list": lambda k: client.lrange(k, 0, -1),
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "stream": lambda k: client.xrange(k, "-", "+"),
    }
    # decode_responses: the type name is str.
    return {key: readers[cast(str, client.type(key))](key) for key in client.scan_iter(f"{prefix}:*", count=1000)}


def record_in(producer, job_id: str, states: set[str], timeout: float = 60) -> dict:
    record = wait_for(
        lambda: (r := producer.get_status(job_id)) and r["state"] in states and r,
        timeout=timeout,
        what=f"job {job_id} to reach {states}",
    )
    assert record  # wait_for returns the condition's truthy value: the record
    return record


def metric_families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, name: str | None = None) -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if name in (None, s.name)}


@pytest.fixture
def app_hook():
    """An application's own callback endpoint: records each POST's path and JSON body."""
    hits: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hits.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # keep pytest's output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


# --- receipts from the sandbox, end to end -----------------------------------------------


def test_sandbox_receipt_moves_sent_job_to_delivered_with_its_price_and_timestamp(producer, workers, sandbox, receiver):
    sandbox.set_faults(price=0.042)
    workers.start(**receiver.env)
    before = time.time()

    job_id = producer.send_sms(to=TO, sender="F", text="deliver me")
    record = record_in(producer, job_id, {"delivered", "not_delivered"})

    assert (record["state"], record["delivery_status"]) == ("delivered", "delivered")
    assert record["price"] == 0.042
    assert RECEIPT_TIMESTAMP.fullmatch(record["receipt_timestamp"])
    stamp = calendar.timegm(time.strptime(record["receipt_timestamp"], "%Y-%m-%d %H:%M:%S"))
    assert before - 120 < stamp < time.time() + 120  # the sandbox's UTC push time, not a constant
    assert record["delivered_at"] >= record["sent_at"]
    [message] = sandbox.messages(10)
    assert message["callback"].startswith(f"{receiver.url}?cosmos_job={job_id}&cosmos_exp=")
    assert [r["http"] for r in sandbox.receipts(10)] == [200]
    # The token is in the query string; the receiver never logs it.
    assert "cosmos_sig" not in receiver.log()


def test_sandbox_not_delivered_receipt_ends_job_not_delivered(producer, workers, sandbox, receiver):
    workers.start(**receiver.env)

    job_id = producer.send_sms(to=NOT_DELIVERED_TO, sender="F", text="never arrives")
    record = record_in(producer, job_id, {"delivered", "not_delivered"})

    assert (record["state"], record["delivery_status"]) == ("not_delivered", "not_delivered")
    assert RECEIPT_TIMESTAMP.fullmatch(record["receipt_timestamp"])
    assert record["delivered_at"] is not None
    assert stats(producer.ledger)["states"]["not_delivered"] == 1


def test_application_callback_gets_the_receipt_untouched_and_the_record_stays_sent(
    producer, workers, sandbox, receiver, app_hook
):
    hook_url, hits = app_hook
    workers.start(**receiver.env)

    job_id = producer.send_sms(to=TO, sender="F", text="app callback", callback=f"{hook_url}/app-hook?ref=42")
    wait_for(lambda: hits, timeout=60, what="the application's callback to receive the receipt")

    [(path, body)] = hits
    assert path == "/app-hook?ref=42"  # no token appended: the URL is the application's
    record = producer.get_status(job_id)
    assert record["state"] == "sent"
    assert body["message_id"] == record["message_id"] and body["status"] == "delivered"
    assert record["delivery_status"] is None
    # Our receiver never heard of it.
    families = metric_families(requests.get(f"{receiver.base_url}/metrics", timeout=30).text)
    assert samples(families["cosmos_receiver_responses"], "cosmos_receiver_responses_total") == {}


def test_metrics_match_ledger_stats_after_sends(producer, workers, sandbox, receiver):
    sandbox.set_faults(price=0.01)
    workers.start(**receiver.env)
    delivered = producer.send_sms(to=TO, sender="F", text="one")
    not_delivered = producer.send_sms(to=NOT_DELIVERED_TO, sender="F", text="two")
    dead = producer.send_sms(to=FAILED_TO, sender="F", text="three")
    for job_id in (delivered, not_delivered):
        record_in(producer, job_id, {"delivered", "not_delivered"})
    record_in(producer, dead, {"dead"})

    response = requests.get(f"{receiver.base_url}/metrics", timeout=30)
    figures = stats(producer.ledger)

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = metric_families(response.text)
    jobs = {labels[0][1]: value for labels, value in samples(families["cosmos_jobs"]).items()}
    assert jobs == {state: float(count) for state, count in figures["states"].items()}
    assert (jobs["delivered"], jobs["not_delivered"], jobs["dead"]) == (1, 1, 1)
    assert samples(families["cosmos_dead_jobs"]) == {(("reason", "failed"),): 1.0}
    assert samples(families["cosmos_attempts"], "cosmos_attempts_total")[()] == figures["attempts"] == 3
    assert samples(families["cosmos_extra_sends"], "cosmos_extra_sends_total")[()] == 0
    assert samples(families["cosmos_total_price_usd"])[()] == pytest.approx(figures["total_price"]) == 0.02
    assert samples(families["cosmos_dead_letter_size"])[()] == figures["dead_letter_size"] == 1
    assert samples(families["cosmos_held_size"])[()] == 0
    assert samples(families["cosmos_breaker_state"])[()] == 0
    assert set(samples(families["cosmos_queue_depth"])) == {(("lane", "single"),), (("lane", "bulk"),)}
    for name in ("cosmos_send_latency_seconds", "cosmos_receipt_latency_seconds"):
        family = families[name]
        buckets = [value for labels, value in samples(family, f"{name}_bucket").items()]
        assert buckets == sorted(buckets), "buckets are cumulative"
        assert samples(family, f"{name}_count")[()] == 2 == buckets[-1]
        assert samples(family, f"{name}_bucket")[(("le", "+Inf"),)] == 2


def test_openapi_describes_every_endpoint_and_answer(receiver):
    spec = requests.get(f"{receiver.base_url}/openapi.json", timeout=30).json()

    assert spec["info"]["title"] == "cosmos-sms delivery-status receiver"
    operation = spec["paths"]["/delivery-status"]["post"]
    assert operation["description"]
    assert {"200", "400", "401", "403", "404", "413", "415", "422", "429", "503"} <= set(operation["responses"])
    assert all(answer["description"] for answer in operation["responses"].values())
    assert {p["name"] for p in operation["parameters"]} == {"cosmos_job", "cosmos_exp", "cosmos_kid", "cosmos_sig"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"status", "to", "message_id", "price", "message_timestamp"}
    assert body.get("additionalProperties", True) is not False  # unknown fields are ignored
    assert {"401", "409", "429"} <= set(operation["responses"])
    assert {"200", "503"} <= set(spec["paths"]["/healthz"]["get"]["responses"])
    assert "200" in spec["paths"]["/metrics"]["get"]["responses"]


# --- refusals ----------------------------------------------------------------------------


def _forged(receiver, job_id):
    url = callback_url(receiver.url, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600)
    sig = url.rsplit("=", 1)[1]
    return requests.post(url[: -len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:], json=receipt(), timeout=30)


def _chunked_oversize(receiver, job_id):
    # No Content-Length: the receiver must count the bytes itself.
    chunks = (b'{"message_id": "' + b"x" * 1000 for _ in range(6))
    return post(receiver, job_id, chunks, headers={"Content-Type": "application/json"})


REFUSALS = {
    "forged signature": (401, _forged),
    "no token": (401, lambda rx, job: requests.post(rx.url, json=receipt(), timeout=30)),
    "rotated-out secret": (401, lambda rx, job: post(rx, job, receipt(), secret=OLD_SECRET)),
    "token of an unknown job": (404, lambda rx, job: post(rx, "no-such-job", receipt())),
    "wrong to": (403, lambda rx, job: post(rx, job, receipt(to=OTHER_TO))),
    "malformed JSON": (
        400,
        lambda rx, job: post(rx, job, b'{"status": "delivered",', headers={"Content-Type": "application/json"}),
    ),
    "missing field": (422, lambda rx, job: post(rx, job, {k: v for k, v in receipt().items() if k != "price"})),
    "unknown status": (422, lambda rx, job: post(rx, job, receipt(status="expired"))),
    "price as string": (422, lambda rx, job: post(rx, job, {**receipt(), "price": "0.0"})),
    "impossible date": (422, lambda rx, job: post(rx, job, receipt(timestamp="2016-02-30 09:22:57"))),
    "oversize body": (413, lambda rx, job: post(rx, job, {**receipt(), "message_id": "x" * 5000})),
    "oversize chunked body": (413, _chunked_oversize),
    "text/plain": (
        415,
        lambda rx, job: post(rx, job, json.dumps(receipt()).encode(), headers={"Content-Type": "text/plain"}),
    ),
    "no content type": (415, lambda rx, job: post(rx, job, json.dumps(receipt()).encode())),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_receipt_changes_nothing(case, producer, receiver, redis_client, prefix):
    expected, send = REFUSALS[case]
    job_id = sent_job(producer)
    before = snapshot(redis_client, prefix)

    response = send(receiver, job_id)

    assert response.status_code == expected, response.text
    assert response.json()["error"]
    assert snapshot(redis_client, prefix) == before
    assert producer.get_status(job_id)["state"] == "sent"


def test_token_signed_with_previous_secret_still_works_after_rotation(receiver_factory, producer):
    rotated = receiver_factory(
        COSMOS_WEBHOOK_SECRET="new-webhook-secret-after-rotation", COSMOS_WEBHOOK_SECRET_PREVIOUS=OLD_SECRET
    )
    older = sent_job(producer, "M-old")
    newer = sent_job(producer, "M-new")

    assert post(rotated, older, receipt("M-old"), secret=OLD_SECRET).json() == {"result": "applied"}
    assert post(rotated, newer, receipt("M-new"), secret="new-webhook-secret-after-rotation").json() == {
        "result": "applied"
    }
    assert post(rotated, newer, receipt("M-new"), secret=TEST_WEBHOOK_SECRET).status_code == 401
    assert [producer.get_status(j)["state"] for j in (older, newer)] == ["delivered", "delivered"]


# --- what a receipt does to a record -------------------------------------------------------


def test_receipt_before_sent_is_kept_and_applied_when_sent_is_recorded(producer, receiver):
    job_id = producer.send_sms(to=TO, sender="F", text="fast receipt")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"

    response = post(receiver, job_id, receipt("M-early", price=0.07, timestamp="2024-02-29 23:59:59"))

    assert (response.status_code, response.json()) == (200, {"result": "pending"})
    assert producer.get_status(job_id)["state"] == "sending"
    producer.ledger.finish(job_id, OWNER, "accepted", status="ok", http=200, message_id="M-early", price=0.01)
    record = producer.get_status(job_id)
    assert (record["state"], record["delivery_status"], record["message_id"]) == ("delivered", "delivered", "M-early")
    assert (record["price"], record["receipt_timestamp"]) == (0.07, "2024-02-29 23:59:59")
    assert record["delivered_at"] is not None


def test_replayed_receipt_is_applied_once(producer, receiver, redis_client, prefix):
    job_id = sent_job(producer, price=0.01)
    body = receipt(status="not_delivered", price=0.02)

    first = post(receiver, job_id, body)
    after_first = snapshot(redis_client, prefix)
    second = post(receiver, job_id, body)

    assert (first.json(), second.json()) == ({"result": "applied"}, {"result": "duplicate"})
    assert snapshot(redis_client, prefix) == after_first
    assert producer.get_status(job_id)["state"] == "not_delivered"
    figures = stats(producer.ledger)
    assert (figures["states"]["not_delivered"], figures["states"]["sent"]) == (1, 0)
    assert figures["total_price"] == pytest.approx(0.02)


def test_receipt_for_another_message_id_on_a_clean_sent_record_is_refused_and_changes_nothing(
    producer, receiver, redis_client, prefix
):
    """A foreign message_id on a clean `sent` record: no doubt, so no extra send is counted."""
    job_id = sent_job(producer, "M-1")
    before = snapshot(redis_client, prefix)

    refused = post(receiver, job_id, receipt("M-2"))

    assert (refused.status_code, refused.json()["error"]) == (409, "refused_foreign")
    assert snapshot(redis_client, prefix) == before
    assert stats(producer.ledger)["extra_sends"] == 0
    # The job's own receipt still completes it.
    assert post(receiver, job_id, receipt("M-1")).json() == {"result": "applied"}
    assert producer.get_status(job_id)["state"] == "delivered"


def test_receipt_for_another_message_id_after_an_ambiguous_resend_counts_one_extra_send(producer, receiver):
    job_id = producer.send_sms(to=TO, sender="F", text="maybe twice")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    producer.ledger.finish(job_id, OWNER, "ambiguous", status="timeout", error="read timeout")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    assert (
        producer.ledger.finish(job_id, OWNER, "accepted", status="ok", http=200, message_id="M-2", price=0.01)[0]
        == "sent"
    )

    assert post(receiver, job_id, receipt("M-1")).json() == {"result": "extra"}
    assert post(receiver, job_id, receipt("M-1")).json() == {"result": "duplicate"}

    record = producer.get_status(job_id)
    assert (record["state"], record["extra_sends"]) == ("sent", 1)
    assert stats(producer.ledger)["extra_sends"] == 1
    assert post(receiver, job_id, receipt("M-2")).json() == {"result": "applied"}
    assert stats(producer.ledger)["extra_sends"] == 1


def test_receipt_settles_a_held_job(producer, receiver, settings_for):
    holding = Ledger(producer.redis, settings_for(COSMOS_AMBIGUOUS_POLICY="hold"))
    job_id = producer.send_sms(to=TO, sender="F", text="maybe sent")
    assert holding.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    assert holding.finish(job_id, OWNER, "ambiguous", status="timeout", error="read timeout")[0] == "held"
    assert stats(producer.ledger)["held_size"] == 1

    response = post(receiver, job_id, receipt("M-held", price=0.03))

    assert response.json() == {"result": "settled"}
    record = producer.get_status(job_id)
    assert (record["state"], record["message_id"], record["price"]) == ("delivered", "M-held", 0.03)
    figures = stats(producer.ledger)
    assert (figures["held_size"], figures["states"]["held"], figures["states"]["delivered"]) == (0, 0, 1)


# --- health, metrics arithmetic, rate limit, command line -------------------------------------


def test_healthz_answers_ok_with_redis_and_503_without(receiver, settings):
    assert requests.get(f"{receiver.base_url}/healthz", timeout=30).json() == {"redis": "ok"}

    nowhere = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.5)
    with TestClient(create_app(settings, nowhere)) as client:
        health = client.get("/healthz")
        receipt_answer = client.post(
            callback_url("http://testserver/delivery-status", "job-1", "x", expires_ts=time.time() + 3600),
            json=receipt(),
        )
    assert (health.status_code, health.json()) == (503, {"redis": "unavailable"})
    assert receipt_answer.status_code == 401  # refused before Redis is asked


def test_a_token_lives_at_least_its_whole_lifetime_whatever_the_fraction_of_a_second():
    # A one-second lifetime from 12.9 s cut down to a whole second would end at 12 s, before it began.
    for issued in (1000.0, 1000.5, 1000.999):
        url = callback_url("http://testserver/delivery-status", "job-1", "s", expires_ts=issued + 1)
        params = dict(parse_qsl(urlsplit(url).query))
        assert verify(params, ["s"], issued + 1) == "job-1"
        assert verify(params, ["s"], issued + 2.01) is None


def test_redis_outage_answers_503_so_cosmos_retries(settings_for):
    settings = settings_for(COSMOS_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET)
    nowhere = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.5)
    url = callback_url("http://testserver/delivery-status", "job-1", TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600)
    with TestClient(create_app(settings, nowhere)) as client:
        response = client.post(url, json=receipt())
        scrape = client.get("/metrics")
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert scrape.status_code == 503


def test_latency_histograms_are_made_cumulative_from_per_bucket_counts(settings, redis_client):
    redis_client.hset(
        f"{settings.redis_prefix}:histograms",
        mapping={
            "send:0.005": 2,
            "send:1": 3,
            "send:+Inf": 1,
            "send:sum": 12.5,
            "send:count": 6,
            "receipt:2.5": 4,
        },
    )
    with TestClient(create_app(settings, redis_client)) as client:
        families = metric_families(client.get("/metrics").text)

    send = families["cosmos_send_latency_seconds"]
    buckets = {labels[0][1]: value for labels, value in samples(send, "cosmos_send_latency_seconds_bucket").items()}
    assert (buckets["0.005"], buckets["0.5"], buckets["1.0"], buckets["3600.0"], buckets["+Inf"]) == (2, 2, 5, 5, 6)
    assert samples(send, "cosmos_send_latency_seconds_sum")[()] == 12.5
    assert samples(send, "cosmos_send_latency_seconds_count")[()] == 6
    receipt_count = samples(families["cosmos_receipt_latency_seconds"], "cosmos_receipt_latency_seconds_count")
    assert receipt_count[()] == 4


def test_token_buckets_refill_at_the_configured_rate():
    now = [100.0]
    buckets = TokenBuckets(rate=2, clock=lambda: now[0])

    assert [buckets.take("a"), buckets.take("a")] == [0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # per client
    now[0] += 0.5
    assert buckets.take("a") == 0


def test_only_failed_authentication_is_rate_limited_per_client(receiver_factory, producer):
    """Only failed authentication is rate limited: valid tokens are never limited."""
    limited = receiver_factory(COSMOS_WEBHOOK_RATE_LIMIT="1")
    job_id = sent_job(producer)

    forged = [_forged(limited, job_id) for _ in range(5)]
    healthy = [requests.get(f"{limited.base_url}/healthz", timeout=30) for _ in range(5)]
    valid = [post(limited, job_id, receipt()) for _ in range(5)]

    refused = [a for a in forged if a.status_code == 429]
    assert refused and {a.status_code for a in forged} <= {401, 429}, [a.status_code for a in forged]
    assert refused[0].json()["error"] == "rate_limited" and int(refused[0].headers["Retry-After"]) >= 1
    assert [a.status_code for a in healthy + valid] == [200] * 10
    assert [a.json()["result"] for a in valid] == ["applied"] + ["duplicate"] * 4


def test_webhook_command_refuses_to_start_without_a_secret(base_env):
    result = subprocess.run(
        cosmos_cmd("webhook", "--port", str(free_port())),
        env=base_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: COSMOS_WEBHOOK_SECRET is not set: the receiver could verify no callback token"
    ]


# --- in-process: the receiver app on the test's real Redis -------------------------------------

INPROC_URL = "http://testserver/delivery-status"


@pytest.fixture
def inproc(settings_for, redis_client):
    """(TestClient, producer, settings) for the receiver app in this process, on the test's Redis."""

    def start(**overrides: str):
        settings = settings_for(COSMOS_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET, **overrides)
        return (
            TestClient(create_app(settings, redis_client), raise_server_exceptions=False),
            SmsProducer(settings),
            settings,
        )

    return start


def inproc_post(client: TestClient, job_id: str, body: dict, secret: str = TEST_WEBHOOK_SECRET):
    return client.post(callback_url(INPROC_URL, job_id, secret, expires_ts=time.time() + 3600), json=body)


def refusal_counts(client: TestClient, **headers: str) -> dict[tuple[str, str], float]:
    family = metric_families(client.get("/metrics", headers=headers).text)["cosmos_receiver_refusals"]
    return {
        (s.labels["reason"], s.labels["code"]): s.value
        for s in family.samples
        if s.name == "cosmos_receiver_refusals_total"
    }


def test_receipt_with_an_unknown_extra_field_is_applied(inproc):
    """Unknown fields are ignored, known ones stay strict."""
    client, producer, _ = inproc()
    job_id = sent_job(producer)
    with client:
        applied = inproc_post(client, job_id, {**receipt(), "err_code": "0", "network": {"mcc": 262}})
        mistyped = inproc_post(client, sent_job(producer, "M-2"), {**receipt("M-2"), "price": "0.0", "err_code": "0"})
    assert (applied.status_code, applied.json()) == (200, {"result": "applied"})
    assert producer.get_status(job_id)["state"] == "delivered"
    assert mistyped.status_code == 422 and mistyped.json()["detail"][0]["field"] == "price"


def test_2000_valid_receipts_from_50_concurrent_clients_at_one_address_are_all_applied(inproc):
    """COSMOS is never throttled by us, at the default limit, even when all of it comes from one address."""
    import asyncio

    import httpx

    _, producer, settings = inproc()
    assert settings.webhook_rate_limit == 200  # the default, far below 2,000 in a burst
    job_ids = [sent_job(producer, f"M-{i}") for i in range(2000)]
    app = create_app(settings, producer.redis)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 443))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
            for index, job_id in enumerate(job_ids):
                queue.put_nowait((index, job_id))
            answers: list[httpx.Response] = []

            async def client() -> None:
                while not queue.empty():
                    index, job_id = queue.get_nowait()
                    answers.append(
                        await http.post(
                            callback_url(INPROC_URL, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600),
                            json=receipt(f"M-{index}"),
                        )
                    )

            await asyncio.gather(*(client() for _ in range(50)))
            return answers

    answers = asyncio.run(run())

    assert len(answers) == 2000
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["result"] for a in answers} == {"applied"}
    assert stats(producer.ledger)["states"]["delivered"] == 2000


def test_failed_authentication_from_one_client_never_slows_another(inproc):
    client, producer, _ = inproc(COSMOS_WEBHOOK_RATE_LIMIT="1")
    job_id = sent_job(producer)
    attacker = TestClient(client.app, client=("198.51.100.9", 5000))
    with client, attacker:
        forged = [inproc_post(attacker, job_id, receipt(), secret="not-our-secret") for _ in range(4)]
        valid = inproc_post(client, job_id, receipt())
    assert forged[0].status_code == 401 and 429 in [a.status_code for a in forged]
    assert valid.json() == {"result": "applied"}


def test_every_refusal_has_a_json_reason_and_is_counted_by_reason(inproc):
    client, producer, _ = inproc()
    job_id = sent_job(producer)
    with client:
        answers = [
            client.post(INPROC_URL, json=receipt()),  # no token
            inproc_post(client, job_id, receipt(to=OTHER_TO)),  # wrong to
            inproc_post(client, "no-such-job", receipt()),  # unknown job
            inproc_post(client, job_id, {"status": "delivered"}),  # missing fields
            client.get("/no-such-path"),  # unknown path
            client.get("/delivery-status"),  # wrong method
        ]
        answers.append(
            client.post(
                callback_url(INPROC_URL, job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600),
                content=b"{}",
                headers={"Content-Type": "text/plain"},
            )
        )
        counts = refusal_counts(client)

    assert [a.status_code for a in answers] == [401, 403, 404, 422, 404, 405, 415]
    for answer in answers:
        assert set(answer.json()) == {"error", "detail"} and answer.json()["error"], answer.text
    assert counts == {
        ("invalid_token", "401"): 1,
        ("to_mismatch", "403"): 1,
        ("unknown_job", "404"): 1,
        ("invalid_body", "422"): 1,
        ("not_found", "404"): 1,
        ("method_not_allowed", "405"): 1,
        ("unsupported_media_type", "415"): 1,
    }


@pytest.mark.parametrize("result, status", [("refused_foreign", 409), ("gone", 404), ("brand_new_refusal", 409)])
def test_a_ledger_result_the_receiver_does_not_take_is_a_4xx_naming_it(inproc, monkeypatch, result, status):
    client, producer, _ = inproc()
    job_id = sent_job(producer)
    monkeypatch.setattr(Ledger, "apply_receipt", lambda *args, **kwargs: result)
    with client:
        answer = inproc_post(client, job_id, receipt())
        counts = refusal_counts(client)
    assert (answer.status_code, answer.json()["error"]) == (status, result)
    assert counts == {(result, str(status)): 1}


def test_every_ledger_receipt_result_is_either_taken_or_refused_with_a_4xx():
    from ledger.schema import RECEIPT_RESULTS
    from receipts.app import ACCEPTED_RESULTS, LEDGER_REFUSALS

    assert set(RECEIPT_RESULTS) <= ACCEPTED_RESULTS | set(LEDGER_REFUSALS)
    assert not ACCEPTED_RESULTS & set(LEDGER_REFUSALS)


def test_an_unexpected_error_anywhere_answers_json_and_is_counted(inproc, monkeypatch):
    import receipts.metrics

    client, _, _ = inproc()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(receipts.metrics, "stats", broken)
    with client:
        answer = client.get("/metrics")
        monkeypatch.undo()
        counts = refusal_counts(client)
    assert (answer.status_code, answer.json()["error"]) == (500, "internal_error")
    assert counts == {("internal_error", "500"): 1}


def test_refusals_are_logged_at_most_once_per_reason_per_interval():
    from receipts.refusals import LogThrottle

    now = [0.0]
    throttle = LogThrottle(10, clock=lambda: now[0])

    assert [throttle.admit("invalid_token") for _ in range(4)] == [1, 0, 0, 0]
    assert throttle.admit("to_mismatch") == 1  # per reason
    now[0] = 10.0
    assert throttle.admit("invalid_token") == 4  # this one and the three swallowed


def test_refusal_log_line_says_how_many_it_stands_for(inproc, capsys):
    client, _, _ = inproc()
    with client:
        for _ in range(30):
            client.post(INPROC_URL, json=receipt())
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "request refused" in line]
    assert len(lines) == 1, lines
    assert "invalid_token" in lines[0] and "cosmos_sig" not in lines[0]


def test_metrics_token_protects_metrics(inproc):
    client, _, _ = inproc(COSMOS_METRICS_TOKEN="scrape-me-7f3a")
    with client:
        bare = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"})
        counts = refusal_counts(client, Authorization="Bearer scrape-me-7f3a")
    assert (bare.status_code, bare.json()["error"]) == (401, "invalid_metrics_token")
    assert wrong.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
    assert right.status_code == 200 and "cosmos_jobs" in right.text
    assert counts == {("invalid_metrics_token", "401"): 2}


def test_overdue_receipts_are_counted_with_the_oldest_wait(inproc, redis_client):
    client, producer, _ = inproc(COSMOS_RECEIPT_OVERDUE_S="600")
    now = time.time()
    redis_client.zadd(producer.keys.awaiting, {"old": now - 7200, "late": now - 601, "fresh": now - 10})
    with client:
        families = metric_families(client.get("/metrics").text)
    assert samples(families["cosmos_receipts_overdue"])[()] == 2
    assert samples(families["cosmos_receipt_oldest_wait_seconds"])[()] == pytest.approx(7200, abs=60)


def test_no_overdue_receipts_reads_zero(inproc):
    client, _, _ = inproc()
    with client:
        families = metric_families(client.get("/metrics").text)
    assert samples(families["cosmos_receipts_overdue"])[()] == 0
    assert samples(families["cosmos_receipt_oldest_wait_seconds"])[()] == 0


def test_metrics_port_serves_metrics_on_loopback_and_not_on_the_public_address(base_env, tmp_path):
    metrics_port = free_port()
    public_port = free_port()
    env = {**base_env, "COSMOS_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET}
    proc = spawn(
        cosmos_cmd("webhook", "--port", str(public_port), "--metrics-port", str(metrics_port)),
        env,
        tmp_path / "receiver.log",
    )
    try:
        base = f"http://127.0.0.1:{public_port}"
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=30, what="the receiver to answer")
        public = requests.get(f"{base}/metrics", timeout=30)
        private = wait_for(
            lambda: _answers(f"http://127.0.0.1:{metrics_port}/metrics"), timeout=30, what="the metrics listener"
        )
    finally:
        stop(proc)
    assert (public.status_code, public.json()["error"]) == (404, "not_found")
    assert "cosmos_jobs" in private.text and "cosmos_receiver_refusals" in private.text


def _answers(url: str):
    try:
        response = requests.get(url, timeout=2)
    except requests.RequestException:
        return None
    return response if response.status_code == 200 else None


def test_behind_a_trusted_proxy_the_forwarded_client_has_its_own_failure_budget(receiver_factory, producer):
    # The test connects from 127.0.0.1, uvicorn's default trusted proxy: X-Forwarded-For names the client.
    limited = receiver_factory(COSMOS_WEBHOOK_RATE_LIMIT="1")
    url = callback_url(limited.url, sent_job(producer), "not-our-secret", expires_ts=time.time() + 3600)

    def forged(client_ip: str) -> int:
        return requests.post(url, json=receipt(), headers={"X-Forwarded-For": client_ip}, timeout=30).status_code

    first = [forged("203.0.113.1") for _ in range(4)]
    other = forged("203.0.113.2")

    assert first[0] == 401 and 429 in first, first
    assert other == 401
