"""The delivery-status receiver: real receiver, worker and sandbox processes on the test's private Redis."""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cosmos_api.callback_token import callback_url
from ledger.stats import stats
from ledger.store import Ledger
from receipts import create_app
from receipts.ratelimit import TokenBuckets
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import ROOT, cosmos_cmd
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET

TO = "033334445566770"
OTHER_TO = "033334445566771"
NOT_DELIVERED_TO = "099900000000007"
FAILED_TO = "099900000000001"
OWNER = "test-owner"
OLD_SECRET = "old-webhook-secret-before-rotation"
RECEIPT_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


# --- helpers -------------------------------------------------------------------------------

def receipt(message_id: str = "M-1", *, to: str = TO, status: str = "delivered", price: float = 0.0,
            timestamp: str = "2016-04-05 09:22:57") -> dict:
    return {"status": status, "to": to, "message_id": message_id, "price": price, "message_timestamp": timestamp}


def post(receiver, job_id: str, body, *, secret: str = TEST_WEBHOOK_SECRET, **kwargs) -> requests.Response:
    """POST a receipt to the receiver with the job's token, as COSMOS would."""
    url = callback_url(receiver.url, job_id, secret)
    if isinstance(body, dict):
        kwargs["json"] = body
    else:
        kwargs["data"] = body
    return requests.post(url, timeout=30, **kwargs)


def sent_job(producer, message_id: str = "M-1", *, to: str = TO, price: float = 0.01) -> str:
    """A job recorded as `sent` with `message_id`, without a worker: the ledger calls a worker makes."""
    job_id = producer.send_sms(to=to, sender="F", text="receipt me")
    assert producer.ledger.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    result, _ = producer.ledger.finish(job_id, OWNER, "accepted", status="ok", http=200,
                                       message_id=message_id, price=price)
    assert result == "sent"
    return job_id


def snapshot(client: redis.Redis, prefix: str) -> dict:
    """Every key of this test's prefix with its value, to prove a request changed nothing."""
    readers = {"hash": client.hgetall, "string": client.get, "set": client.smembers,
               "list": lambda k: client.lrange(k, 0, -1), "zset": lambda k: client.zrange(k, 0, -1, withscores=True)}
    return {key: readers[client.type(key)](key) for key in client.scan_iter(f"{prefix}:*", count=1000)}


def record_in(producer, job_id: str, states: set[str], timeout: float = 60) -> dict:
    return wait_for(lambda: (r := producer.get_status(job_id)) and r["state"] in states and r,
                    timeout=timeout, what=f"job {job_id} to reach {states}")


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

def test_sandbox_receipt_moves_sent_job_to_delivered_with_its_price_and_timestamp(
        producer, workers, sandbox, receiver):
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
    assert message["callback"].startswith(f"{receiver.url}?cosmos_job={job_id}&cosmos_kid=")
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
        producer, workers, sandbox, receiver, app_hook):
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
    assert {p["name"] for p in operation["parameters"]} == {"cosmos_job", "cosmos_kid", "cosmos_sig"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"status", "to", "message_id", "price", "message_timestamp"}
    assert body["additionalProperties"] is False
    assert {"200", "503"} <= set(spec["paths"]["/healthz"]["get"]["responses"])
    assert "200" in spec["paths"]["/metrics"]["get"]["responses"]


# --- refusals ----------------------------------------------------------------------------

def _forged(receiver, job_id):
    url = callback_url(receiver.url, job_id, TEST_WEBHOOK_SECRET)
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
    "malformed JSON": (400, lambda rx, job: post(rx, job, b'{"status": "delivered",',
                                                 headers={"Content-Type": "application/json"})),
    "missing field": (422, lambda rx, job: post(rx, job, {k: v for k, v in receipt().items() if k != "price"})),
    "extra field": (422, lambda rx, job: post(rx, job, {**receipt(), "err_code": "0"})),
    "unknown status": (422, lambda rx, job: post(rx, job, receipt(status="expired"))),
    "price as string": (422, lambda rx, job: post(rx, job, {**receipt(), "price": "0.0"})),
    "impossible date": (422, lambda rx, job: post(rx, job, receipt(timestamp="2016-02-30 09:22:57"))),
    "oversize body": (413, lambda rx, job: post(rx, job, {**receipt(), "message_id": "x" * 5000})),
    "oversize chunked body": (413, _chunked_oversize),
    "text/plain": (415, lambda rx, job: post(rx, job, json.dumps(receipt()).encode(),
                                             headers={"Content-Type": "text/plain"})),
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
    rotated = receiver_factory(COSMOS_WEBHOOK_SECRET="new-webhook-secret-after-rotation",
                               COSMOS_WEBHOOK_SECRET_PREVIOUS=OLD_SECRET)
    older = sent_job(producer, "M-old")
    newer = sent_job(producer, "M-new")

    assert post(rotated, older, receipt("M-old"), secret=OLD_SECRET).json() == {"result": "applied"}
    assert post(rotated, newer, receipt("M-new"), secret="new-webhook-secret-after-rotation").json() == {
        "result": "applied"}
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


def test_receipt_for_another_message_id_counts_one_extra_send(producer, receiver):
    job_id = sent_job(producer, "M-1")

    assert post(receiver, job_id, receipt("M-2")).json() == {"result": "extra"}
    assert post(receiver, job_id, receipt("M-2")).json() == {"result": "duplicate"}

    record = producer.get_status(job_id)
    assert (record["state"], record["extra_sends"]) == ("sent", 1)
    assert stats(producer.ledger)["extra_sends"] == 1
    # The job's own receipt still completes it.
    assert post(receiver, job_id, receipt("M-1")).json() == {"result": "applied"}
    assert producer.get_status(job_id)["state"] == "delivered"
    assert stats(producer.ledger)["extra_sends"] == 1


def test_receipt_settles_a_held_job(producer, receiver, settings_for):
    holding = Ledger(producer.redis, settings_for(COSMOS_AMBIGUOUS_POLICY="hold"))
    job_id = producer.send_sms(to=TO, sender="F", text="maybe sent")
    assert holding.begin(job_id, OWNER, count_delivery=True).verdict == "go"
    assert holding.finish(job_id, OWNER, "ambiguous", status="timeout", error="read timeout")[0] == "held"
    assert stats(producer.ledger)["held_size"] == 1

    response = post(receiver, job_id, receipt("M-held", price=0.03))

    assert response.json() == {"result": "settled_held"}
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
        receipt_answer = client.post(callback_url("http://testserver/delivery-status", "job-1", "x"),
                                     json=receipt())
    assert (health.status_code, health.json()) == (503, {"redis": "unavailable"})
    assert receipt_answer.status_code == 401  # refused before Redis is asked


def test_redis_outage_answers_503_so_cosmos_retries(settings_for):
    settings = settings_for(COSMOS_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET)
    nowhere = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.5)
    url = callback_url("http://testserver/delivery-status", "job-1", TEST_WEBHOOK_SECRET)
    with TestClient(create_app(settings, nowhere)) as client:
        response = client.post(url, json=receipt())
        scrape = client.get("/metrics")
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert scrape.status_code == 503


def test_latency_histograms_are_made_cumulative_from_per_bucket_counts(settings, redis_client):
    redis_client.hset(f"{settings.redis_prefix}:histograms", mapping={
        "send:0.005": 2, "send:1": 3, "send:+Inf": 1, "send:sum": 12.5, "send:count": 6, "receipt:2.5": 4,
    })
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


def test_client_over_the_rate_limit_gets_429(receiver_factory):
    limited = receiver_factory(COSMOS_WEBHOOK_RATE_LIMIT="1")

    answers = [requests.get(f"{limited.base_url}/healthz", timeout=30) for _ in range(5)]

    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert refused[0].json()["error"] == "rate_limited" and int(refused[0].headers["Retry-After"]) >= 1


def test_webhook_command_refuses_to_start_without_a_secret(base_env):
    result = subprocess.run(cosmos_cmd("webhook", "--port", str(free_port())), env=base_env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: COSMOS_WEBHOOK_SECRET is not set: the receiver could verify no callback token"]
