"""Checks at worker start: refuse what cannot work, warn about what risks messages."""

from __future__ import annotations

import hashlib

import redis
import structlog

from config.errors import SettingsError
from config.keys import Keys
from config.redis_client import require_redis_version
from config.settings import Settings

log = structlog.get_logger("cosmos.startup")


def check_redis_safety(client: redis.Redis, min_replicas: int = 0) -> list[str]:
    """Warnings about a Redis that could drop messages: eviction, writes not durable, replicas missing."""
    warnings = []
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        aof = client.config_get("appendonly").get("appendonly")
        fsync = client.config_get("appendfsync").get("appendfsync")
        save = client.config_get("save").get("save")
    except redis.ResponseError:
        return ["cannot read the Redis configuration (CONFIG is disabled); check it by hand"]
    if policy and policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy!r}: under memory pressure it will evict jobs; set it to 'noeviction'"
        )
    if aof != "yes" and not save:
        warnings.append(
            "Redis persistence is off (no AOF, no RDB): a restart loses every queued job; enable appendonly"
        )
    elif aof != "yes":
        warnings.append(
            "Redis runs without AOF: a crash loses every job since the last snapshot, including "
            "acknowledged ones; enable appendonly with appendfsync always, or require replicas "
            "(COSMOS_REDIS_MIN_REPLICAS)"
        )
    elif fsync != "always" and min_replicas == 0:
        warnings.append(
            f"Redis appendfsync is {fsync!r} and COSMOS_REDIS_MIN_REPLICAS is 0: a host crash can "
            "roll back an acknowledged enqueue or a lease (a message sent twice); set appendfsync "
            "always, or run replicas and set COSMOS_REDIS_MIN_REPLICAS"
        )
    if min_replicas > 0:
        connected = replicas_connected(client)
        if connected < min_replicas:
            warnings.append(
                f"COSMOS_REDIS_MIN_REPLICAS is {min_replicas} but {connected} replica(s) are connected: "
                "every enqueue will fail (EnqueueFailed) and no worker will send until enough are"
            )
    return warnings


def replicas_connected(client: redis.Redis) -> int:
    return int(client.info("replication").get("connected_slaves", 0))


def check_redis_role(client: redis.Redis) -> None:
    """Refuse a REDIS_URL that points at a read-only replica (every write would fail)."""
    info = client.info("replication")
    if info.get("role") == "slave":
        primary = f"{info.get('master_host')}:{info.get('master_port')}"
        raise SettingsError(
            f"REDIS_URL points at a read-only replica (its primary is {primary}): point it at the "
            "primary, or use a sentinel:// list with COSMOS_REDIS_SENTINEL_MASTER"
        )


WARN_ONCE_S = 60
"""A start-up warning about Redis is logged once per fleet start: by one process in this many seconds."""


def run_startup_checks(settings: Settings, client: redis.Redis) -> None:
    if settings.transport == "smpp":
        _, system_id, password = settings.require_smpp()
        if len(system_id) > 15 or len(password) > 8:
            log.warning(
                "COSMOS_SMPP_SYSTEM_ID or COSMOS_SMPP_PASSWORD is longer than SMPP 3.4 allows (15 and 8); sent as given"
            )
    else:
        settings.require_credentials()
    require_redis_version(client)
    check_redis_role(client)
    lock = Keys(settings.redis_prefix).lock
    for warning in check_redis_safety(client, settings.redis_min_replicas):
        # Every worker process starting at once sees the same Redis: the first one to claim a warning says it.
        digest = hashlib.sha256(warning.encode()).hexdigest()[:16]
        if client.set(lock(f"warned:{digest}"), 1, nx=True, ex=WARN_ONCE_S):
            log.warning(warning)
