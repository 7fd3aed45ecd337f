"""Checks at worker start: refuse what cannot work, warn about what risks messages."""

from __future__ import annotations

import redis
import structlog

from config.settings import Settings

log = structlog.get_logger("cosmos.startup")


def check_redis_safety(client: redis.Redis) -> list[str]:
    """Warnings about a Redis that could drop messages (eviction, no persistence)."""
    warnings = []
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        aof = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
    except redis.ResponseError:
        return ["cannot read the Redis configuration (CONFIG is disabled); check it by hand"]
    if policy and policy != "noeviction":
        warnings.append(f"Redis maxmemory-policy is {policy!r}: under memory pressure it will evict jobs; "
                        "set it to 'noeviction'")
    if aof != "yes" and not save:
        warnings.append("Redis persistence is off (no AOF, no RDB): a restart loses every queued job; "
                        "enable appendonly")
    return warnings


def run_startup_checks(settings: Settings, client: redis.Redis) -> None:
    settings.require_credentials()
    for warning in check_redis_safety(client):
        log.warning(warning)
