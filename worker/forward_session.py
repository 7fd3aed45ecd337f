"""HTTP for forwarded POSTs: a requests Session whose every request ends by a total deadline, and
whose connections go only where the destination rule allows.

requests' timeouts bound each socket operation, not the request: an application that answers
one byte at a time could hold a forwarding thread for ever. Here each connection's socket is
registered with a watchdog thread that shuts it down once the request's total time has passed,
so `post_within` returns (with an error) by its deadline whatever the other side does.

A per-message callback is a URL someone else chose: each connection it makes resolves the name,
checks every address (`DestinationRule`) and connects to the one it checked, so neither a name that
points inside nor one that changes between check and connect reaches an internal service.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

WATCHDOG_TICK_S = 0.05
"""How often the watchdog looks for requests past their deadline (seconds)."""

_request = threading.local()  # the deadline of the request this thread is making


class _Watchdog:
    """Shuts down the sockets of requests past their deadline (one daemon thread per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, socket.socket]] = {}
        self._cut: set[int] = set()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> None:
        with self._lock:
            self._watched[id(sock)] = (deadline, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cosmos-forward-watchdog", daemon=True)
                self._thread.start()

    def forget(self, sock: socket.socket) -> bool:
        """Stop watching `sock`; returns whether it was cut at its deadline."""
        with self._lock:
            self._watched.pop(id(sock), None)
            if id(sock) in self._cut:
                self._cut.discard(id(sock))
                return True
            return False

    def _run(self) -> None:
        while True:
            time.sleep(WATCHDOG_TICK_S)  # a ticking loop, not synchronisation
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._watched.items() if deadline <= now]
                socks = [self._watched.pop(key)[1] for key in late]
                self._cut.update(late)
            for sock in socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
                except OSError:
                    pass


_watchdog = _Watchdog()


def _register(sock: socket.socket | None) -> None:
    deadline = getattr(_request, "deadline", None)
    if sock is not None and deadline is not None:
        _watchdog.watch(sock, deadline)
        _request.socks.append(sock)


DESTINATION_REFUSED = "destination_refused"
"""A forward's `last_error` when its destination's address is one the rule refuses."""


class DestinationRefused(OSError):
    """A connection to an address the destination rule refuses; nothing was sent."""


@dataclass(frozen=True)
class DestinationRule:
    """Which addresses a per-message callback may reach. Link-local ones (169.254.0.0/16, fe80::/10:
    cloud metadata services) never; loopback and private ranges only unless `deny_private`."""

    deny_private: bool = False

    def refuses(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_link_local:
            return True
        internal = ip.is_private or ip.is_loopback or ip.is_unspecified or ip.is_reserved or ip.is_multicast
        return self.deny_private and internal

    def vet(self, host: str, port: int) -> str:
        """The address to connect to: `host` resolved, every address checked (DestinationRefused if any fails)."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_, sockaddr in infos:
            if self.refuses(str(sockaddr[0])):
                _request.refused = True
                raise DestinationRefused(f"{host} resolves to an address forwards may not reach")
        return str(infos[0][4][0])


class _Vetted:
    """Connects to the address the request's rule checked (TLS still verifies the name)."""

    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        rule = getattr(_request, "rule", None)
        if rule is None:
            return super()._new_conn()  # type: ignore[misc]
        named = self._dns_host
        self._dns_host = rule.vet(named, self.port)
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = named


class _WatchedHTTPConnection(_Vetted, HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self.sock)  # a reused connection was not connected by this request
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(_Vetted, HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self.sock)  # a reused connection was not connected by this request
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def forward_session(threads: int) -> requests.Session:
    """A Session for forwarded POSTs: no cookies kept, no retries of its own, no proxy or netrc from the
    environment, deadlines enforced."""
    session = requests.Session()
    session.trust_env = False  # never a proxy from the environment, never ~/.netrc credentials
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = _WatchedAdapter(pool_connections=64, pool_maxsize=threads, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class DeadlinePassed(requests.Timeout):
    """The request was cut at its total deadline (whatever the other side had sent by then)."""


def post_within(
    session: requests.Session, total_s: float, url: str, rule: DestinationRule | None = None, **kwargs: Any
) -> requests.Response:
    """`session.post(url, **kwargs)` that ends by `total_s` seconds from now, else DeadlinePassed; with a
    `rule`, every connection is checked after name resolution, else DestinationRefused.

    Use `stream=True` and close the response without reading its body: the deadline covers
    the request and the answer's headers. A request cut at its deadline always fails, even if
    what had arrived parses as an answer.
    """
    _request.deadline, _request.socks = time.monotonic() + total_s, []
    _request.rule, _request.refused = rule, False
    response: requests.Response | None = None
    try:
        response = session.post(url, **kwargs)
    except requests.RequestException:
        refused = _request.refused
        _request.rule = None
        if refused:
            _forget_all()
            raise DestinationRefused(f"{url}: {DESTINATION_REFUSED}") from None
        if not _forget_all():
            raise
        raise DeadlinePassed(f"no complete answer within {total_s:g} s") from None
    _request.rule = None
    if _forget_all():
        response.close()
        raise DeadlinePassed(f"no complete answer within {total_s:g} s")
    return response


def _forget_all() -> bool:
    """Stop watching this thread's request; whether any of its sockets was cut."""
    cut = False
    for sock in _request.socks:
        cut = _watchdog.forget(sock) or cut
    _request.deadline, _request.socks = None, []
    return cut
