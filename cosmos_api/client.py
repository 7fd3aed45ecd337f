"""The COSMOS HTTP client: the only module that knows `requests`.

Every answer, and every way of not getting one, maps to one `Outcome`: documented
status first, HTTP code second.
"""

from __future__ import annotations

import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

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
"""Keep-alive connections per Session: one per concurrent sender, so none is reopened."""


class CosmosClient:
    """Sends one message to `{api_url}/sms/` with one pooled keep-alive Session per thread."""

    def __init__(self, api_url: str, api_key: str, api_secret: str, *,
                 connect_timeout_s: float, read_timeout_s: float):
        self.endpoint = f"{api_url.rstrip('/')}/sms/"
        self._credentials = {"api_key": api_key, "api_secret": api_secret}
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._local = threading.local()

    def __repr__(self) -> str:  # never show the credentials, even in a traceback
        return f"CosmosClient({self.endpoint!r})"

    def _session(self) -> tuple[requests.Session, requests.PreparedRequest]:
        """This thread's Session and a request to the endpoint prepared once.

        Preparing per send would merge settings, cookies and proxy variables from the
        environment every time: a third of the client's CPU, for a request that never changes.
        """
        local = self._local
        if getattr(local, "session", None) is None:
            session = requests.Session()
            session.proxies = requests.utils.get_environ_proxies(self.endpoint)
            session.trust_env = False
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            local.session = session
            local.template = session.prepare_request(requests.Request("POST", self.endpoint, headers=HEADERS))
        return local.session, local.template

    def send(self, to: str, sender: str, text: str, callback: str | None = None) -> Outcome:
        body = {**self._credentials, "to": to, "from": sender, "text": text}
        if callback:
            body["callback"] = callback
        data = encode_body(body)
        if len(data) > MAX_BODY_BYTES:
            return Outcome("permanent", "large_request", error="request body over 4096 bytes; not sent")
        session, template = self._session()
        request = template.copy()
        request.prepare_body(data=data, files=None)
        started = time.perf_counter()
        try:
            response = session.send(request, timeout=self._timeout, allow_redirects=False,
                                    proxies=session.proxies)
        except requests.RequestException as exc:
            return _from_exception(exc, _ms(started))
        return _from_response(response, _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _from_exception(exc: requests.RequestException, latency_ms: int) -> Outcome:
    name = type(exc).__name__
    if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
        return Outcome("transient", "connect_error", latency_ms=latency_ms, error=f"{name}: not connected")
    # The request may have reached COSMOS: a read timeout or a connection dropped mid-answer.
    return Outcome("ambiguous", "no_answer", latency_ms=latency_ms, error=f"{name}: no answer after sending")


def _never_connected(exc: requests.RequestException) -> bool:
    # requests wraps urllib3's MaxRetryError, whose `reason` says whether a socket ever opened.
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, NameResolutionError))


def _from_response(response: requests.Response, latency_ms: int) -> Outcome:
    code = response.status_code
    try:
        data = response.json()
    except ValueError:
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
        return Outcome("ambiguous", status or f"http_{code}", code, latency_ms,
                       error=f"HTTP {code} without a usable answer")
    if code in TRANSIENT_HTTP or code >= 500:
        error = f"HTTP {code}" + (" (is COSMOS_API_URL right?)" if code == 404 else "")
        return Outcome("transient", status or f"http_{code}", code, latency_ms, error=error)
    if code == 401:
        return Outcome("permanent", "unauthorized", code, latency_ms, error="HTTP 401")
    if code == 413:
        return Outcome("permanent", "large_request", code, latency_ms, error="HTTP 413")
    return Outcome("transient", status or f"http_{code}", code, latency_ms, error=f"unexpected HTTP {code}")
