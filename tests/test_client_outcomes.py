"""Unit tests of one function: how a COSMOS answer maps to an outcome (status first, HTTP second)."""

from __future__ import annotations

import json

import pytest
import requests

from cosmos_api.client import _from_response


def response(code: int, body) -> requests.Response:
    r = requests.Response()
    r.status_code = code
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return r


@pytest.mark.parametrize(
    "code, body, kind, status",
    [
        (200, {"status": "ok", "message_id": "Az_1-2", "price": 0.05}, "accepted", "ok"),
        (200, {"status": "ok", "message_id": "Az_1-2", "price": "free"}, "accepted", "ok"),
        (200, {"status": "ok"}, "ambiguous", "ok"),
        (200, b"<html>proxy</html>", "ambiguous", "http_200"),
        (400, {"status": "invalid_to"}, "permanent", "invalid_to"),
        (400, {"status": "blacklist"}, "permanent", "blacklist"),
        (401, {"status": "unauthorized"}, "permanent", "unauthorized"),
        (401, b"", "permanent", "unauthorized"),
        (413, {"status": "large_request"}, "permanent", "large_request"),
        (408, {"status": "timeout"}, "transient", "timeout"),
        (500, {"status": "internal_error"}, "transient", "internal_error"),
        (503, b"busy", "transient", "http_503"),
        (429, b"", "transient", "http_429"),
        (404, b"not found", "transient", "http_404"),
        (502, b"bad gateway", "ambiguous", "http_502"),
        (504, b"", "ambiguous", "http_504"),
        (200, {"status": "internal_error"}, "transient", "internal_error"),
    ],
)
def test_answer_maps_to_one_outcome(code, body, kind, status):
    outcome = _from_response(response(code, body), latency_ms=3)
    assert (outcome.kind, outcome.status) == (kind, status)


def test_accepted_keeps_message_id_and_price():
    outcome = _from_response(response(200, {"status": "ok", "message_id": "Az_42415-252521", "price": 0.5}), 1)
    assert (outcome.message_id, outcome.price) == ("Az_42415-252521", 0.5)


def test_refused_connection_is_transient_and_a_dropped_answer_is_ambiguous(sandbox):
    from cosmos_api.client import CosmosClient
    from tests.conftest import TEST_API_KEY, TEST_API_SECRET
    from tests.support.ports import free_port

    closed = CosmosClient(f"http://127.0.0.1:{free_port()}/v1.0", "k", "s", connect_timeout_s=1, read_timeout_s=1)
    assert closed.send("033334445566770", "F", "x").kind == "transient"

    client = CosmosClient(sandbox.api_url, TEST_API_KEY, TEST_API_SECRET, connect_timeout_s=1, read_timeout_s=1)
    sandbox.script("033334445566770", "drop", "stall 3")
    assert client.send("033334445566770", "F", "x").kind == "ambiguous"
    assert client.send("033334445566770", "F", "x").kind == "ambiguous"
    assert client.send("033334445566770", "F", "x").kind == "accepted"
