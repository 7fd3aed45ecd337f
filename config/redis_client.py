"""The one place a Redis client is built, and the one way to ride out a Redis blip.

`redis_client(settings, role)` takes `REDIS_URL` in any of its forms:

- `redis://`, `rediss://`, `unix://`: one Redis server;
- `sentinel://host:26379;sentinel://host2:26379` (kombu's form, `;`-separated, optional
  `:password@` for the data nodes and `/db` on the first entry): redis-py's `Sentinel`, whose
  `master_for(COSMOS_REDIS_SENTINEL_MASTER)` asks the sentinels for the current primary on every
  new connection, so after a failover every command finds the new primary without a restart.

Each role has its own timeouts (`TIMEOUTS`): a producer fails fast into `EnqueueFailed`, a worker
waits out a slow Redis rather than abandon a lease. `ride_out` retries one call on a
connection error within a bound: the call itself first (no tenacity cost on the usual path),
then tenacity with a short exponential wait.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel
from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential

from config.errors import SettingsError
from config.settings import Settings

T = TypeVar("T")

Role = Literal["producer", "worker", "receiver", "console", "cli", "demo"]


@dataclass(frozen=True)
class Timeouts:
    """How long one Redis call of a role may wait, in seconds."""

    connect_s: float
    """Longest TCP (or unix socket) connect to a Redis server."""
    socket_s: float
    """Longest wait for one reply."""
    health_check_s: int
    """A pooled connection idle this long is PINGed before use (0: never): a dead one is replaced, not failed on."""


TIMEOUTS: dict[Role, Timeouts] = {
    # Producers answer an application's call: a dead Redis must become EnqueueFailed within
    # COSMOS_ENQUEUE_TIMEOUT_S (default 5 s), so each try is short and the retry bound does the rest.
    "producer": Timeouts(connect_s=1.0, socket_s=2.0, health_check_s=30),
    # Workers hold leases of tens of seconds: waiting 10 s for a busy Redis costs less than
    # abandoning a lease (a message sent again later), and they retry behind it anyway.
    "worker": Timeouts(connect_s=5.0, socket_s=10.0, health_check_s=30),
    # The receiver answers COSMOS: it must reply 503 (COSMOS retries) well before COSMOS gives up.
    "receiver": Timeouts(connect_s=2.0, socket_s=5.0, health_check_s=30),
    # The console serves a person's page: a few seconds, then an error they can see.
    "console": Timeouts(connect_s=2.0, socket_s=5.0, health_check_s=30),
    # Operator commands page through sets: patient per reply, quick to say Redis is not there.
    "cli": Timeouts(connect_s=2.0, socket_s=10.0, health_check_s=0),
    # The demo's supervisor checks and cleans its Redis: quick answers or none.
    "demo": Timeouts(connect_s=1.0, socket_s=5.0, health_check_s=0),
}

BROKER_CONNECT_TIMEOUT_S = 3.0
"""Celery's broker connections (kombu, seconds): a producer's publish must fail into EnqueueFailed, not hang;
shared by workers, whose consumer reconnects by itself."""
BROKER_SOCKET_TIMEOUT_S = 5.0
"""Longest wait for one broker reply (seconds); above a busy Redis's worst pause, below the enqueue bound."""

SENTINEL_CONNECT_TIMEOUT_S = 0.5
"""Longest connect to one sentinel (seconds): a sentinel list is tried in turn, so an unreachable list
costs (number of sentinels) x this before MasterNotFoundError; sentinels are on the LAN."""
SENTINEL_SOCKET_TIMEOUT_S = 1.0
"""Longest wait for one sentinel's answer (seconds): SENTINEL get-master-addr-by-name is instant."""

CLIENT_RETRIES = 1
"""redis-py's own retries of one command on a connection error (redis-py 6+ defaults to 3 with backoff).
One immediate retry replaces a pooled connection that died while idle (or points at a demoted primary
after a failover); longer outages are `ride_out`'s job, so a call's bound stays predictable."""

BLIP_WAIT_MAX_S = 1.0
"""Longest wait between two tries of `ride_out` (seconds); the waits start at 50 ms."""

REDIS_DOWN = BLIP_ERRORS = (redis.ConnectionError, redis.TimeoutError)
"""Errors that mean "Redis was not there for a moment"; a sentinel that finds no primary raises
MasterNotFoundError, a ConnectionError."""


class BadRedisUrl(ValueError):
    """REDIS_URL is not a form this module can connect to."""


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed `sentinel://` list: where the sentinels are and how to talk to the primary they name."""

    sentinels: list[tuple[str, int]]
    db: int = 0
    username: str | None = None
    password: str | None = None


MIN_REDIS_VERSION = (7, 0)
"""The oldest Redis the ledger's scripts run on (Valkey reports its Redis compatibility, 7.2)."""


def require_redis_version(client: redis.Redis) -> None:
    """Refuse, in one line, a Redis older than MIN_REDIS_VERSION: the scripts would fail later with raw errors."""
    version = str(client.info("server").get("redis_version", "0"))
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if numbers < MIN_REDIS_VERSION:
        wanted = ".".join(map(str, MIN_REDIS_VERSION))
        raise SettingsError(f"REDIS_URL: Redis {version} is too old; cosmos-sms needs Redis {wanted} or newer")


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().startswith("sentinel://")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """kombu's `sentinel://[[user]:password@]host:port[/db];sentinel://host2:port...`."""
    sentinels: list[tuple[str, int]] = []
    db, username, password = 0, None, None
    for part in (p.strip() for p in url.split(";")):
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme != "sentinel" or not parts.hostname:
            raise BadRedisUrl(f"{part!r} is not a sentinel://host:port entry")
        try:
            port = parts.port or 26379
        except ValueError:
            raise BadRedisUrl(f"{part!r} has a bad port") from None
        sentinels.append((parts.hostname, port))
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise BadRedisUrl(f"{part!r}: the database must be a number")
            db = int(path)
        username = username or (unquote(parts.username) if parts.username else None)
        password = password or (unquote(parts.password) if parts.password else None)
    if not sentinels:
        raise BadRedisUrl("names no sentinel")
    return SentinelTarget(sentinels, db, username, password)


def sentinel_kwargs(settings: Settings) -> dict[str, object]:
    """How to talk to the sentinels themselves: short timeouts, and their own password if they have one.

    Also given to kombu (its `sentinel_kwargs` transport option, celery#6551): without it a
    password-protected sentinel refuses kombu, and a dead one would block without a timeout.
    """
    kwargs: dict[str, object] = {
        "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT_S,
    }
    if settings.redis_sentinel_password is not None and settings.redis_sentinel_password.get_secret_value():
        kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    return kwargs


def redis_client(
    settings: Settings, role: Role, max_connections: int | None = None, *, decode_responses: bool = True
) -> redis.Redis:
    """A Redis client for `role`, on the primary `settings.redis_url` names (directly or via sentinels)."""
    return redis_client_at(
        settings.redis_url,
        role,
        max_connections,
        decode_responses=decode_responses,
        sentinel_master=settings.redis_sentinel_master,
        sentinels=sentinel_kwargs(settings),
    )


def redis_client_at(
    url: str,
    role: Role,
    max_connections: int | None = None,
    *,
    decode_responses: bool = True,
    sentinel_master: str | None = None,
    sentinels: dict[str, object] | None = None,
) -> redis.Redis:
    """`redis_client` for a process that has a URL but no Settings (the demo's supervisor)."""
    timeouts = TIMEOUTS[role]
    options: dict[str, object] = {
        "decode_responses": decode_responses,
        "socket_timeout": timeouts.socket_s,
        "socket_connect_timeout": timeouts.connect_s,
        "health_check_interval": timeouts.health_check_s,
        "retry": Retry(NoBackoff(), CLIENT_RETRIES, supported_errors=(redis.ConnectionError,)),
    }
    if max_connections is not None:
        options["max_connections"] = max_connections
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    if not sentinel_master:
        raise BadRedisUrl("a sentinel:// URL needs COSMOS_REDIS_SENTINEL_MASTER, the primary's name")
    target = parse_sentinel_url(url)
    # No redis-py retries per sentinel: the list itself is the retry, and it must stay within its bound.
    asking = {
        "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT_S,
        **(sentinels or {}),
        "retry": Retry(NoBackoff(), 0),
    }
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=asking)
    primary: redis.Redis = sentinel.master_for(
        sentinel_master, db=target.db, username=target.username, password=target.password, **options
    )
    return primary


def is_blip(exc: BaseException) -> bool:
    """Whether `exc` means Redis (or a primary with enough replicas) was missing for a moment."""
    if isinstance(exc, BLIP_ERRORS):
        return True
    # min-replicas-to-write refuses writes while too few replicas are connected (a failover under way).
    return isinstance(exc, redis.ResponseError) and "NOREPLICAS" in str(exc)


def ride_out(call: Callable[[], T], bound_s: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, tried again on a Redis blip until `bound_s` seconds have passed since it began.

    The first try runs without tenacity's per-call cost; no try starts after the bound; the last error
    is raised as is (the caller translates it). The call must be safe to repeat.
    """
    started = time.monotonic()
    try:
        return call()  # the usual case, without tenacity's cost
    except Exception as exc:
        remaining = bound_s - (time.monotonic() - started)
        if not is_blip(exc) or remaining <= 0:
            raise
    retrying = Retrying(
        stop=stop_before_delay(remaining),
        wait=wait_exponential(multiplier=0.05, max=BLIP_WAIT_MAX_S),
        retry=retry_if_exception(is_blip),
        reraise=True,
        sleep=sleep,
    )
    return retrying(call)
