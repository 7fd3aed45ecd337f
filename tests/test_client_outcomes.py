"""Unit tests of one function: how a COSMOS answer maps to an outcome (status first, HTTP second)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from cosmos_api.client import (
    POOL_SIZE,
    CosmosClient,
    PoolTransport,
    RequestsTransport,
    _from_response,
    from_pool_error,
)


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


# --- the urllib3 transport, end to end against a scripted local server -------------------

TO = "033334445566770"


class Scripted(ThreadingHTTPServer):
    """A local HTTP/1.1 server answering every POST with one scripted (code, body, headers); counts requests."""

    daemon_threads = True
    request_queue_size = 512  # 150 clients connect at once

    def __init__(
        self,
        code: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        barrier: threading.Barrier | None = None,
    ):
        self.answer = (code, body, headers or {})
        self.barrier = barrier
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1.0"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as COSMOS

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests += 1
        if self.server.barrier is not None:
            self.server.barrier.wait()
        code, body, headers = self.server.answer
        self.send_response(code)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def scripted():
    servers = []

    def start(*args, **kwargs) -> Scripted:
        server = Scripted(*args, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_for(url: str, connect_timeout_s: float = 1.0, read_timeout_s: float = 1.0) -> CosmosClient:
    return CosmosClient(url, "k", "s", connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)


@pytest.mark.parametrize(
    "code, body, headers, kind, status",
    [
        (200, b'{"status": "ok", "message_id": "Az_1", "price": 0.05}', {}, "accepted", "ok"),
        (200, b"<html>proxy</html>", {"Content-Type": "text/html"}, "ambiguous", "http_200"),
        (200, b"\xff\xfe\xfa not text", {}, "ambiguous", "http_200"),
        (302, b"", {"Location": "/elsewhere"}, "transient", "http_302"),
        (301, b'{"status": "ok", "message_id": "Az_1"}', {"Location": "/v1.0/sms/"}, "transient", "ok"),
        (401, b"", {}, "permanent", "unauthorized"),
        (404, b"<html>not found</html>", {}, "transient", "http_404"),
        (408, b'{"status": "timeout"}', {}, "transient", "timeout"),
        (408, b"", {}, "transient", "http_408"),
        (500, b'{"status": "internal_error"}', {}, "transient", "internal_error"),
        (503, b"busy", {"Retry-After": "1"}, "transient", "http_503"),
        (507, b"", {}, "transient", "http_507"),
        (502, b"bad gateway", {}, "ambiguous", "http_502"),
        (413, b"", {}, "permanent", "large_request"),
    ],
)
def test_answer_through_the_pool_maps_like_the_mapping_function_and_is_sent_once(
    scripted, code, body, headers, kind, status
):
    # Given a server scripted with one answer; when the client sends once:
    server = scripted(code, body, headers)
    outcome = client_for(server.url).send(TO, "F", "x")
    # Then the outcome is the mapping's, and exactly one request was made (no retry, no redirect followed).
    assert (outcome.kind, outcome.status, outcome.http) == (kind, status, code)
    assert server.requests == 1


def test_refused_connection_is_transient_and_names_host_port_and_setting(scripted):
    from tests.support.ports import free_port

    port = free_port()
    outcome = client_for(f"http://127.0.0.1:{port}/v1.0").send(TO, "F", "x")
    assert (outcome.kind, outcome.status) == ("transient", "connect_error")
    assert outcome.error == f"connection_refused: 127.0.0.1:{port} (COSMOS_API_URL=http://127.0.0.1:{port}/v1.0)"


def test_a_name_that_does_not_resolve_is_transient_and_says_so():
    outcome = client_for("https://cosmos-api.invalid/v1.0").send(TO, "F", "x")
    assert (outcome.kind, outcome.status) == ("transient", "connect_error")
    assert outcome.error == "unresolvable_host: cosmos-api.invalid:443 (COSMOS_API_URL=https://cosmos-api.invalid/v1.0)"


def test_connect_timeout_is_transient_and_waits_the_connect_timeout_only():
    # A listener whose accept backlog is full drops new SYNs: the connect itself times out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the backlog (its real size is the kernel's choice, 0 means ~1)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1.0"
        outcome = client_for(url, connect_timeout_s=0.3, read_timeout_s=30).send(TO, "F", "x")
    finally:
        for s in fillers + [listener]:
            s.close()
    assert (outcome.kind, outcome.status) == ("transient", "connect_error")
    assert outcome.error.startswith("connect_timeout: 127.0.0.1:")
    assert outcome.latency_ms < 5_000  # bounded by the connect timeout, never the 30 s read timeout


def _silent_server(close_after_request: bool):
    """Accepts, reads one request, then either closes (dropped answer) or stays silent (read timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    seen = []
    halt = threading.Event()

    def serve():
        while not halt.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(conn.recv(65536))
            if close_after_request:
                conn.close()
            else:
                halt.wait(5)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen, halt


@pytest.mark.parametrize("close_after_request, error", [(True, "ProtocolError"), (False, "ReadTimeoutError")])
def test_no_answer_after_the_request_went_out_is_ambiguous_and_never_resent(close_after_request, error):
    listener, seen, halt = _silent_server(close_after_request)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1.0"
        outcome = client_for(url, connect_timeout_s=1, read_timeout_s=0.3).send(TO, "F", "x")
    finally:
        halt.set()
        listener.close()
    assert (outcome.kind, outcome.status) == ("ambiguous", "no_answer")
    assert outcome.error.startswith(error)
    assert len(seen) == 1 and seen[0].startswith(b"POST /v1.0/sms/ HTTP/1.1")


@pytest.mark.parametrize(
    "exc, kind",
    [
        (ConnectTimeoutError(None, "connect timed out"), "transient"),
        (NewConnectionError(None, "refused"), "transient"),
        (NameResolutionError("cosmos.invalid", None, socket.gaierror("no such host")), "transient"),
        (ReadTimeoutError(None, "/v1.0/sms/", "read timed out"), "ambiguous"),
        (ProtocolError("Connection aborted.", ConnectionResetError()), "ambiguous"),
        (SSLError("bad handshake"), "ambiguous"),  # as requests mapped it: not provably unsent
        (DecodeError("bad gzip"), "ambiguous"),
        (ConnectionResetError(), "ambiguous"),
    ],
)
def test_pool_failure_maps_to_connected_or_not(exc, kind):
    outcome = from_pool_error(exc, 7)
    assert (outcome.kind, outcome.latency_ms) == (kind, 7)
    assert outcome.status == ("connect_error" if kind == "transient" else "no_answer")


def no_proxy(monkeypatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_pool_keeps_the_configured_timeouts_and_never_retries_or_redirects(monkeypatch):
    no_proxy(monkeypatch)
    client = CosmosClient("http://127.0.0.1:9/v1.0", "k", "SECRET-x9", connect_timeout_s=3.05, read_timeout_s=10)
    transport = client.transport
    assert isinstance(transport, PoolTransport)
    assert (transport.timeout.connect_timeout, transport.timeout.read_timeout) == (3.05, 10)
    assert transport.pool.retries is False
    assert transport.pool.pool.maxsize == POOL_SIZE >= 150
    assert "SECRET-x9" not in repr(client) + repr(vars(transport))  # the secret never in a repr


def test_a_proxied_endpoint_goes_through_requests(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = CosmosClient("http://cosmos.example/v1.0", "k", "s", connect_timeout_s=1, read_timeout_s=1)
    assert isinstance(client.transport, RequestsTransport)
    assert client.transport.proxies["http"] == "http://127.0.0.1:9"


def test_150_requests_in_flight_from_150_threads_share_one_pool_and_reuse_their_connections(scripted):
    # Given a server that answers only once 150 requests are in flight at the same time:
    in_flight = 150
    server = scripted(200, b'{"status": "ok", "message_id": "Az_1"}', barrier=threading.Barrier(in_flight, timeout=20))
    client = client_for(server.url, connect_timeout_s=10, read_timeout_s=30)

    def round_trip() -> list[str]:
        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(client.send(TO, "F", "x").kind)) for _ in range(in_flight)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        return results

    # When 150 threads send, twice:
    first = round_trip()
    opened = client.transport.pool.num_connections
    second = round_trip()
    # Then every request was accepted, and the second round opened no new connection.
    assert first == second == ["accepted"] * in_flight
    assert opened == in_flight
    assert client.transport.pool.num_connections == opened


def test_an_https_endpoint_verifies_certificates_against_requests_ca_bundle(monkeypatch):
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    no_proxy(monkeypatch)

    client = CosmosClient("https://cosmos.example/v1.0", "k", "s", connect_timeout_s=1, read_timeout_s=1)
    pool = client.transport.pool
    assert (pool.scheme, pool.cert_reqs, pool.ca_certs) == ("https", "CERT_REQUIRED", DEFAULT_CA_BUNDLE_PATH)
