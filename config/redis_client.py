"""The one Redis client factory (named timeouts per role) and the one way to ride out a Redis blip."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from config.settings import Settings

T = TypeVar("T")

PRODUCER_SOCKET_TIMEOUT_S = 2.0
"""A producer must turn a dead Redis into EnqueueFailed quickly, not hang."""
PRODUCER_CONNECT_TIMEOUT_S = 1.0
WORKER_SOCKET_TIMEOUT_S = 10.0
"""Workers wait longer: a slow Redis is better than an abandoned outcome write."""
WORKER_CONNECT_TIMEOUT_S = 5.0
HEALTH_CHECK_INTERVAL_S = 30
"""PING a pooled connection idle this long before reuse, so a dead one is noticed before a command."""

_ROLES = {
    "producer": (PRODUCER_SOCKET_TIMEOUT_S, PRODUCER_CONNECT_TIMEOUT_S),
    "worker": (WORKER_SOCKET_TIMEOUT_S, WORKER_CONNECT_TIMEOUT_S),
    "receiver": (PRODUCER_SOCKET_TIMEOUT_S, PRODUCER_CONNECT_TIMEOUT_S),
    "console": (PRODUCER_SOCKET_TIMEOUT_S, PRODUCER_CONNECT_TIMEOUT_S),
    "cli": (WORKER_SOCKET_TIMEOUT_S, WORKER_CONNECT_TIMEOUT_S),
}
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


def redis_client(settings: Settings, role: str, max_connections: int | None = None) -> redis.Redis:
    """A decoded-responses client for `role` (producer, worker, receiver, console, cli)."""
    socket_timeout, connect_timeout = _ROLES[role]
    return redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=socket_timeout,
                                socket_connect_timeout=connect_timeout,
                                health_check_interval=HEALTH_CHECK_INTERVAL_S, max_connections=max_connections)


def ride_out(call: Callable[[], T], bound_s: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, retried through connection errors and timeouts for up to `bound_s` seconds.

    The first try runs without tenacity's per-call cost; the call must be safe to repeat.
    """
    started = time.monotonic()
    try:
        return call()
    except REDIS_DOWN:
        pass
    retrying = Retrying(stop=stop_after_delay(max(0.0, bound_s - (time.monotonic() - started))),
                        wait=wait_exponential(multiplier=0.05, max=1.0),
                        retry=retry_if_exception_type(REDIS_DOWN), reraise=True, sleep=sleep)
    return retrying(call)
