"""Fuzzing the receiver in-process: any body with a valid token never gets a 5xx, and only a real receipt counts."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from datetime import datetime
from typing import Any, TypeGuard

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cosmos_api.callback_token import callback_url
from ledger.store import Ledger, NewJob
from receipts import create_app
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET

JOB_TO = "033334445566770"
JOB_MESSAGE_ID = "Az_42415-252521"
MAX_BODY_BYTES = 4096
FIELDS = {"status", "to", "message_id", "price", "message_timestamp"}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


# --- the rules, written independently of receipts/schema.py ----------------------------------


def real_timestamp(value: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", value):
        return False
    try:
        datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True


def is_receipt(body: object) -> TypeGuard[dict[str, Any]]:
    """Whether `body` is a Delivery Status the receiver must take (see docs/receiver.md).

    Fields besides the spec's are ignored (the day COSMOS adds one, receipts must still count).
    """
    if not isinstance(body, dict) or not FIELDS <= set(body):
        return False
    status, to, message_id, price, stamp = (
        body[k] for k in ("status", "to", "message_id", "price", "message_timestamp")
    )
    price_ok = (
        isinstance(price, (int, float))
        and not isinstance(price, bool)
        and (isinstance(price, int) or math.isfinite(price))
        and 0 <= price <= 1_000_000
    )
    return (
        status in ("delivered", "not_delivered")
        and isinstance(to, str)
        and re.fullmatch(r"0[0-9]{14}", to) is not None
        and isinstance(message_id, str)
        and 1 <= len(message_id) <= 100
        and not any(ord(c) < 32 or c in ";\x7f" for c in message_id)
        and price_ok
        and isinstance(stamp, str)
        and real_timestamp(stamp)
    )


def parsed(body: bytes) -> object:
    """The JSON value of `body` as a strict parser sees it (None when it is not JSON)."""

    def no_constants(name: str):
        raise ValueError(name)

    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except ValueError:
        return None


# --- strategies ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
huge_strings = st.integers(100, 6000).map(lambda n: "9" * n)
# Values of another JSON type that a lax parser would coerce into the field's type.
WRONG_TYPES: dict[str, list[Any]] = {
    "price": ["0.5", "1", "1e3", True, False, None, [0.5]],
    "status": [1, True, None, ["delivered"], {"status": "delivered"}],
    "to": [33334445566770, 3.3334445566770e13, True, None, [JOB_TO]],
    "message_id": [252521, 1.5, True, None, [JOB_MESSAGE_ID]],
    "message_timestamp": [1459848177, 1459848177.0, True, None, ["2016-04-05 09:22:57"]],
}
valid_receipts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["delivered", "not_delivered"]),
        "to": st.just(JOB_TO) | st.from_regex(r"\A0[0-9]{14}\Z"),
        "message_id": st.just(JOB_MESSAGE_ID) | st.text("ABCXYZabc0123456789_-", min_size=1, max_size=100),
        "price": st.floats(0, 1_000_000) | st.integers(0, 1_000_000),
        "message_timestamp": st.datetimes(datetime(1970, 1, 1), datetime(2099, 12, 31)).map(
            lambda moment: moment.strftime(TIMESTAMP_FORMAT)
        ),
    }
)
# Each field: sometimes right, often subtly or grossly wrong.
statuses = st.sampled_from(["delivered", "not_delivered", "ok", "DELIVERED", ""]) | st.text(max_size=12)
numbers = st.just(JOB_TO) | st.from_regex(r"\A0\d{14}\Z") | st.just(JOB_TO + "\n") | st.text(max_size=16)
message_ids = st.text(max_size=110) | huge_strings
prices = (
    st.floats() | st.integers() | st.booleans() | st.sampled_from([1_000_000.5, -0.0, -1, 1e308]) | st.text(max_size=5)
)
timestamps = (
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
    | st.from_regex(r"\A\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\Z")
    | st.text(max_size=25)
)
mixed_receipts = st.fixed_dictionaries(
    {"status": statuses, "to": numbers, "message_id": message_ids, "price": prices, "message_timestamp": timestamps}
)


@st.composite
def mutated_receipts(draw) -> dict:
    """A receipt with fields dropped, added or given another JSON type."""
    body = draw(valid_receipts)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "add", "retype"]))
        if action == "add":
            body[draw(st.text(max_size=12) | st.sampled_from(["err_code", "network-code"]))] = draw(json_values)
        elif body:
            name = draw(st.sampled_from(sorted(body)))
            if action == "drop":
                del body[name]
            else:
                body[name] = draw(json_values | huge_strings)
    return body


@st.composite
def wrongly_typed_receipts(draw) -> dict:
    """A valid receipt for the job but for one field of another JSON type."""
    body = {**draw(valid_receipts), "to": JOB_TO}
    name = draw(st.sampled_from(sorted(WRONG_TYPES)))
    body[name] = draw(st.sampled_from(WRONG_TYPES[name]))
    return body


def encoded(value: object, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    st.tuples(valid_receipts, st.booleans()).map(lambda pair: encoded(*pair)),
    st.tuples(valid_receipts.map(lambda body: {**body, "to": JOB_TO}), st.booleans()).map(lambda pair: encoded(*pair)),
    st.tuples(valid_receipts, st.integers(MAX_BODY_BYTES - 150, 3 * MAX_BODY_BYTES)).map(
        lambda pair: encoded({**pair[0], "message_id": "9" * pair[1]}, True)
    ),
    st.tuples(mixed_receipts, st.booleans()).map(lambda pair: encoded(*pair)),
    st.tuples(mutated_receipts(), st.booleans()).map(lambda pair: encoded(*pair)),
    st.tuples(wrongly_typed_receipts(), st.booleans()).map(lambda pair: encoded(*pair)),
    st.tuples(json_values, st.booleans()).map(lambda pair: encoded(*pair)),
    st.binary(max_size=300),
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "Application/JSON"])


# --- the test -----------------------------------------------------------------------------


@pytest.fixture
def fuzz_target(settings_for, redis_client):
    """The app on the test's Redis, and a way to make a fresh `sent` job for each example."""
    settings = settings_for(COSMOS_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET, COSMOS_WEBHOOK_RATE_LIMIT="0")
    app = create_app(settings, redis_client)
    ledger = Ledger(redis_client, settings)

    def sent_job() -> str:
        job_id = uuid.uuid4().hex
        ledger.enqueue([NewJob(job_id, "single", JOB_TO, "F", "fuzz", None, False, None, "fuzz", 3600)])
        assert ledger.begin(job_id, "fuzz-owner", count_delivery=True).verdict == "go"
        assert (
            ledger.finish(
                job_id, "fuzz-owner", "accepted", status="ok", http=200, message_id=JOB_MESSAGE_ID, price=0.5
            )[0]
            == "sent"
        )
        return job_id

    def state_of(job_id: str) -> tuple:
        keys = ledger.keys
        return (
            redis_client.hgetall(keys.job(job_id)),
            redis_client.hgetall(keys.counters),
            redis_client.hgetall(keys.histograms),
            redis_client.dbsize(),
        )  # any key added or removed shows here

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, sent_job, state_of, ledger


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies, content_type=content_types)
def test_any_body_with_a_valid_token_gets_no_5xx_and_only_a_receipt_changes_the_record(fuzz_target, body, content_type):
    client, sent_job, state_of, ledger = fuzz_target
    job_id = sent_job()
    before = state_of(job_id)

    response = client.post(
        callback_url("http://testserver/delivery-status", job_id, TEST_WEBHOOK_SECRET, expires_ts=time.time() + 3600),
        content=body,
        headers={"Content-Type": content_type},
    )

    assert response.status_code < 500, response.text
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics: how often each answer came
    value = parsed(body)
    if len(body) <= MAX_BODY_BYTES and is_receipt(value):
        if value["to"] != JOB_TO:
            assert response.status_code == 403, response.text
            assert state_of(job_id) == before
            return
        if value["message_id"] != JOB_MESSAGE_ID:
            # A foreign message id on a clean `sent` record: refused (409 refused_foreign) and
            # nothing changes; a ledger without that rule yet counts an extra send.
            if response.status_code == 409:
                assert response.json()["error"] == "refused_foreign"
                assert state_of(job_id) == before
            else:
                assert (response.status_code, response.json()) == (200, {"result": "extra"})
                assert (ledger.get(job_id)["state"], ledger.get(job_id)["extra_sends"]) == ("sent", 1)
            return
        assert (response.status_code, response.json()) == (200, {"result": "applied"})
        record = ledger.get(job_id)
        assert (record["state"], record["delivery_status"]) == (value["status"], value["status"])
        # A receipt's price counts within [0, max(1.00, 10 x the accepted 0.50)]; outside, the acceptance's stays.
        price = float(value["price"]) if float(value["price"]) <= 5.0 else 0.5
        assert (record["price"], record["receipt_timestamp"]) == (price, value["message_timestamp"])
    else:
        assert response.status_code in (400, 413, 422), response.text
        assert set(response.json()) == {"error", "detail"}
        assert state_of(job_id) == before
