"""The COSMOS HTTP client: the only module that knows HTTP (`urllib3`, and `requests` behind a proxy).

Every answer, and every way of not getting one, maps to one `Outcome`: documented
status first, HTTP code second. Two transports carry the request and map the same way:

- `PoolTransport`, the hot path: one thread-safe `urllib3` connection pool per client, shared by
  every sending thread. It is the pool `requests` is built on, without requests' per-call layers
  (hooks, cookies, adapters, a Response object): measured at about a third of its CPU per request.
- `RequestsTransport`, when the environment routes the endpoint through a proxy: requests'
  own proxy handling (tunnels, auth, SOCKS) stays in charge there.
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)

from cosmos_api.outcomes import (
    AMBIGUOUS_HTTP,
    PERMANENT_STATUSES,
    TRANSIENT_HTTP,
    TRANSIENT_STATUSES,
    Outcome,
)
from cosmos_api.rules import MAX_BODY_BYTES, encode_body

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}  # as the spec lists them
POOL_SIZE = 256
"""Keep-alive connections kept per host: one per concurrent sender (≥ 150 in flight), so none is reopened."""


class CosmosClient:
    """Sends one message to `{api_url}/sms/`; safe to share between threads."""

    def __init__(self, api_url: str, api_key: str, api_secret: str, *, connect_timeout_s: float, read_timeout_s: float):
        self.endpoint = f"{api_url.rstrip('/')}/sms/"
        self._credentials = {"api_key": api_key, "api_secret": api_secret}
        # The proxy variables are read once, as requests did per Session before.
        proxies = requests.utils.get_environ_proxies(self.endpoint)
        transport = RequestsTransport if proxies else PoolTransport
        self.transport: PoolTransport | RequestsTransport = transport(
            self.endpoint, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, proxies=proxies
        )
        self.transport.where = where(api_url)

    def __repr__(self) -> str:  # never show the credentials, even in a traceback
        return f"CosmosClient({self.endpoint!r})"

    def send(self, to: str, sender: str, text: str, callback: str | None = None) -> Outcome:
        body = {**self._credentials, "to": to, "from": sender, "text": text}
        if callback:
            body["callback"] = callback
        data = encode_body(body)
        if len(data) > MAX_BODY_BYTES:
            return Outcome("permanent", "large_request", error="request body over 4096 bytes; not sent")
        return self.transport.post(data)


def request_headers() -> dict[str, str]:
    """The headers requests sent (User-Agent, Accept-Encoding, keep-alive), with the spec's on top."""
    return {**requests.utils.default_headers(), **HEADERS}


class PoolTransport:
    """POSTs through one `urllib3` pool: no retries, no redirects, the configured timeouts."""

    def __init__(
        self, endpoint: str, *, connect_timeout_s: float, read_timeout_s: float, proxies: dict[str, str] | None = None
    ):
        parts = urlsplit(endpoint)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.where = where(endpoint)
        self.timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
        self.headers = request_headers()
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": DEFAULT_CA_BUNDLE_PATH} if parts.scheme == "https" else {}
        # block=False: a sender never waits for a connection (its lease is running); past
        # POOL_SIZE at once an extra connection is opened and closed after use.
        self.pool = urllib3.connection_from_url(
            endpoint, maxsize=POOL_SIZE, block=False, retries=False, timeout=self.timeout, **tls
        )

    def post(self, data: bytes) -> Outcome:
        started = time.perf_counter()
        try:
            response = self.pool.urlopen(
                "POST",
                self.path,
                body=data,
                headers=self.headers,
                retries=False,
                redirect=False,
                timeout=self.timeout,
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return from_pool_error(exc, _ms(started), self.where)
        return from_answer(response.status, response.data, _ms(started))


class RequestsTransport:
    """POSTs through a requests Session per thread, with the request prepared once per thread."""

    def __init__(
        self, endpoint: str, *, connect_timeout_s: float, read_timeout_s: float, proxies: dict[str, str] | None = None
    ):
        self.endpoint = endpoint
        self.where = where(endpoint)
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.proxies = proxies or {}
        self._local = threading.local()

    def _session(self) -> tuple[requests.Session, requests.PreparedRequest]:
        """This thread's Session and a request to the endpoint prepared once.

        Preparing per send would merge settings, cookies and proxy variables from the
        environment every time: a third of requests' CPU, for a request that never changes.
        """
        local = self._local
        if getattr(local, "session", None) is None:
            session = requests.Session()
            session.proxies = dict(self.proxies)
            session.trust_env = False
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            local.session = session
            local.template = session.prepare_request(requests.Request("POST", self.endpoint, headers=HEADERS))
        return local.session, local.template

    def post(self, data: bytes) -> Outcome:
        session, template = self._session()
        request = template.copy()
        request.prepare_body(data=data, files=None)
        started = time.perf_counter()
        try:
            response = session.send(request, timeout=self.timeout, allow_redirects=False, proxies=session.proxies)
        except requests.RequestException as exc:
            return _from_exception(exc, _ms(started), self.where)
        return _from_response(response, _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def where(api_url: str) -> str:
    """The host, port and setting a connection failure names: `api.example:443 (COSMOS_API_URL=...)`."""
    parts = urlsplit(api_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port} (COSMOS_API_URL={api_url})"


CONNECT_FAILURES = ("connection_refused", "unresolvable_host", "connect_timeout", "connection_failed")
"""How a connection to COSMOS never opened, as `last_error` starts (the status is `connect_error`)."""


def connect_failure(exc: BaseException | None) -> str:
    """Which of CONNECT_FAILURES a never-opened connection was."""
    if isinstance(exc, NameResolutionError):
        return "unresolvable_host"
    if isinstance(exc, NewConnectionError):
        refused = "refused" in str(exc).lower() or isinstance(exc.__context__, ConnectionRefusedError)
        return "connection_refused" if refused else "connection_failed"
    return "connect_timeout"


def _not_connected(failure: str, latency_ms: int, where: str) -> Outcome:
    return Outcome("transient", "connect_error", latency_ms=latency_ms, error=f"{failure}: {where}")


def _no_answer(name: str, latency_ms: int) -> Outcome:
    # The request may have reached COSMOS: a read timeout or a connection dropped mid-answer.
    return Outcome("ambiguous", "no_answer", latency_ms=latency_ms, error=f"{name}: no answer after sending")


def from_pool_error(exc: BaseException, latency_ms: int, where: str = "COSMOS") -> Outcome:
    """A urllib3 failure (retries off, so never wrapped in MaxRetryError): connected or not?"""
    # NewConnectionError and NameResolutionError are ConnectTimeoutErrors too: no socket ever opened.
    if isinstance(exc, ConnectTimeoutError):
        return _not_connected(connect_failure(exc), latency_ms, where)
    return _no_answer(type(exc).__name__, latency_ms)


def _from_exception(exc: requests.RequestException, latency_ms: int, where: str) -> Outcome:
    # requests wraps urllib3's MaxRetryError, whose `reason` says whether a socket ever opened.
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, (NewConnectionError, NameResolutionError)):
        return _not_connected(connect_failure(reason), latency_ms, where)
    if isinstance(exc, requests.ConnectTimeout):
        return _not_connected("connect_timeout", latency_ms, where)
    return _no_answer(type(exc).__name__, latency_ms)


def _from_response(response: requests.Response, latency_ms: int) -> Outcome:
    return from_answer(response.status_code, response.content, latency_ms)


def from_answer(code: int, body: bytes, latency_ms: int) -> Outcome:
    """Map an HTTP answer (status code and body) to an outcome: status first, HTTP code second."""
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, or not text at all (UnicodeDecodeError is a ValueError)
        data = None
    status = data.get("status") if isinstance(data, dict) and isinstance(data.get("status"), str) else ""

    if code == 200 and status == "ok":
        message_id = data.get("message_id")
        price = data.get("price", 0.0)
        if isinstance(message_id, str) and message_id:
            # Accepted is accepted; a price we cannot count is recorded as 0.0, not trusted.
            usable = isinstance(price, (int, float)) and not isinstance(price, bool) and 0 <= price < 1e6
            return Outcome("accepted", "ok", code, latency_ms, message_id, float(price) if usable else 0.0)
    if status in PERMANENT_STATUSES:
        return Outcome("permanent", status, code, latency_ms, error=f"COSMOS said {status} (HTTP {code})")
    if status in TRANSIENT_STATUSES:
        return Outcome("transient", status, code, latency_ms, error=f"COSMOS said {status} (HTTP {code})")
    if code == 200 or code in AMBIGUOUS_HTTP:
        return Outcome(
            "ambiguous", status or f"http_{code}", code, latency_ms, error=f"HTTP {code} without a usable answer"
        )
    if code in TRANSIENT_HTTP or code >= 500:
        error = f"HTTP {code}" + (" (is COSMOS_API_URL right?)" if code == 404 else "")
        return Outcome("transient", status or f"http_{code}", code, latency_ms, error=error)
    if code == 401:
        return Outcome("permanent", "unauthorized", code, latency_ms, error="HTTP 401")
    if code == 413:
        return Outcome("permanent", "large_request", code, latency_ms, error="HTTP 413")
    return Outcome("transient", status or f"http_{code}", code, latency_ms, error=f"unexpected HTTP {code}")
