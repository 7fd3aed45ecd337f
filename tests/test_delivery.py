"""Delivery logic in-process: a real ledger on the test Redis, an injected COSMOS client and sleep."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from cosmos_api.outcomes import Outcome
from producers.producer import SmsProducer
from worker.context import WorkerContext
from worker.delivery import deliver_job

TO = "033334445566770"
OK = Outcome("accepted", "ok", 200, 5, "m-1", 0.05)
FAILED = Outcome("permanent", "failed", 400, 5, error="failed")
INTERNAL = Outcome("transient", "internal_error", 500, 5, error="internal_error")
DROPPED = Outcome("ambiguous", "connection_lost", 0, 5, error="dropped after send")
UNAUTHORIZED = Outcome("permanent", "unauthorized", 401, 5, error="unauthorized")


class ScriptedClient:
    """Answers each send with the next scripted outcome; remembers every request."""

    def __init__(self, *outcomes: Outcome):
        self.outcomes = list(outcomes)
        self.requests: list[tuple[str, str | None]] = []

    def send(self, to: str, sender: str, text: str, callback: str | None = None) -> Outcome:
        self.requests.append((text, callback))
        return self.outcomes.pop(0)


@pytest.fixture
def make(settings_for, redis_client):
    def build(*outcomes: Outcome, **env: str) -> tuple[WorkerContext, SmsProducer, ScriptedClient, list[float]]:
        settings = settings_for(COSMOS_RETRY_BACKOFF_BASE_S="1", COSMOS_RETRY_BACKOFF_MAX_S="30", **env)
        ctx = WorkerContext(settings)
        client = ScriptedClient(*outcomes)
        ctx.__dict__["client"] = client  # the cached property, injected
        return ctx, SmsProducer(settings), client, []

    return build


def test_a_burst_retries_transient_failures_with_backoff_until_accepted(make):
    ctx, producer, client, sleeps = make(INTERNAL, INTERNAL, OK)
    job_id = producer.send_sms(TO, "F", "hi")

    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "sent"

    record = producer.get_status(job_id)
    assert (record["state"], record["attempts"], record["message_id"]) == ("sent", 3, "m-1")
    assert 1 <= sleeps[0] <= 2 and 2 <= sleeps[1] <= 3  # base * 2^(n-1) plus up to one base of jitter


def test_a_spent_burst_defers_the_job_to_its_lane_retry_set(make):
    ctx, producer, client, sleeps = make(INTERNAL, INTERNAL, INTERNAL)
    job_id = producer.send_sms(TO, "F", "hi")

    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "retrying"

    record = producer.get_status(job_id)
    assert (record["state"], record["attempts"]) == ("retrying", 3)
    assert ctx.redis.zscore(ctx.keys.retry("single"), job_id) is not None


def test_a_permanent_answer_dead_letters_without_a_retry(make):
    ctx, producer, client, sleeps = make(FAILED)
    job_id = producer.send_sms(TO, "F", "hi")
    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "dead"
    assert producer.get_status(job_id)["dead_reason"] == "failed" and sleeps == []


def test_unauthorized_pauses_sending_instead_of_killing_the_job(make):
    ctx, producer, client, sleeps = make(UNAUTHORIZED)
    job_id = producer.send_sms(TO, "F", "hi")
    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "paused"
    assert producer.get_status(job_id)["state"] == "retrying"
    assert "account" in producer.ledger.pause_state()


def test_a_404_from_the_endpoint_pauses_as_well(make):
    ctx, producer, client, sleeps = make(Outcome("transient", "http_404", 404, 5, error="not found"))
    job_id = producer.send_sms(TO, "F", "hi")
    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "paused"
    assert "endpoint_not_found" in producer.ledger.pause_state()["account"]


def test_an_ambiguous_attempt_is_resent_once_and_counted(make):
    ctx, producer, client, sleeps = make(DROPPED, OK)
    job_id = producer.send_sms(TO, "F", "hi")
    assert deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append) == "sent"
    assert producer.get_status(job_id)["ambiguous_resends"] == 1


def test_a_forwarded_job_goes_to_cosmos_with_our_callback(make):
    ctx, producer, client, sleeps = make(
        OK, COSMOS_WEBHOOK_URL="https://sms.example.com/delivery-status", COSMOS_WEBHOOK_SECRET="w" * 32
    )
    job_id = producer.send_sms(TO, "F", "hi", callback="https://app.example.com/hook")
    deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append)
    [(_, callback)] = client.requests
    assert callback is not None and callback.startswith("https://sms.example.com/delivery-status?")
    assert parse_qs(urlsplit(callback).query)["cosmos_job"] == [job_id]


def test_without_our_receiver_the_applications_callback_goes_to_cosmos(make):
    ctx, producer, client, sleeps = make(OK)
    job_id = producer.send_sms(TO, "F", "hi", callback="https://app.example.com/hook")
    deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append)
    assert client.requests == [("hi", "https://app.example.com/hook")]


def test_a_reserved_rate_slot_is_waited_for_once_without_polling(make):
    ctx, producer, client, sleeps = make(OK, OK, OK, COSMOS_RATE_LIMIT="2")
    jobs = [producer.send_sms(TO, "F", f"m{i}") for i in range(3)]
    for job_id in jobs:
        deliver_job(ctx, job_id, count_delivery=True, sleep=sleeps.append)
    # Singles take the next slot at once: the 2nd and 3rd wait about 0.5 s and 1 s, one sleep each.
    assert len(sleeps) == 2 and 0.3 < sleeps[0] < 0.6 and 0.8 < sleeps[1] < 1.1


def test_a_refused_connection_names_host_port_and_setting_and_counts_for_the_breaker(settings_for, redis_client):
    from structlog.testing import capture_logs

    from tests.support.ports import free_port

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/v1.0"
    settings = settings_for(COSMOS_API_URL=api_url, COSMOS_BREAKER_THRESHOLD="100")
    ctx, producer = WorkerContext(settings), SmsProducer(settings)
    job_id = producer.send_sms(TO, "F", "hi")
    with capture_logs() as logs:
        deliver_job(ctx, job_id, count_delivery=True, sleep=lambda s: None)

    record = producer.get_status(job_id)
    assert record is not None
    assert record["last_error"] == f"connection_refused: 127.0.0.1:{port} (COSMOS_API_URL={api_url})"
    attempts = record["attempts"]
    assert attempts >= 1 and int(redis_client.hget(producer.keys.breaker, "failures")) == attempts
    warnings = [e for e in logs if e["log_level"] == "warning" and e["event"].startswith("COSMOS not reachable")]
    assert len(warnings) == attempts
    assert (warnings[0]["host"], warnings[0]["port"], warnings[0]["cosmos_api_url"]) == ("127.0.0.1", port, api_url)
