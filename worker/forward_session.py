"""HTTP for forwarded POSTs: a requests Session whose every request ends by a total deadline.

requests' timeouts bound each socket operation, not the request: an application that answers
one byte at a time could hold a forwarding thread for ever. Here each connection's socket is
registered with a watchdog thread that shuts it down once the request's total time has passed,
so `post_within` returns (with an error) by its deadline whatever the other side does.
"""

from __future__ import annotations

import http.cookiejar
import socket
import threading
import time
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


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self.sock)  # a reused connection was not connected by this request
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
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
    """A Session for forwarded POSTs: no cookies kept, no retries of its own, deadlines enforced."""
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = _WatchedAdapter(pool_connections=64, pool_maxsize=threads, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class DeadlinePassed(requests.Timeout):
    """The request was cut at its total deadline (whatever the other side had sent by then)."""


def post_within(session: requests.Session, total_s: float, url: str, **kwargs: Any) -> requests.Response:
    """`session.post(url, **kwargs)` that ends by `total_s` seconds from now, else DeadlinePassed.

    Use `stream=True` and close the response without reading its body: the deadline covers
    the request and the answer's headers. A request cut at its deadline always fails, even if
    what had arrived parses as an answer.
    """
    _request.deadline, _request.socks = time.monotonic() + total_s, []
    response: requests.Response | None = None
    try:
        response = session.post(url, **kwargs)
    except requests.RequestException:
        if not _forget_all():
            raise
        raise DeadlinePassed(f"no complete answer within {total_s:g} s") from None
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
