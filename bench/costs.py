"""The costs other features add to every message, each switchable so the benchmark can price it.

A cost is measured only when this build has its switch (the setting exists); otherwise the
benchmark says so instead of reporting a figure for something that is not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Cost:
    name: str
    what: str
    setting: str | None
    """The environment variable whose presence in Settings says this build has the feature."""
    where: str
    """Which runs it applies to: `bulk` (sending) or `delivered` (receipts and forwards)."""


COSTS = (
    Cost("aof", "Redis AOF with the shipped appendfsync (deploy/redis/single.conf), vs no persistence", None, "bulk"),
    Cost("events", "the outcome events stream (COSMOS_EVENTS_MAXLEN=0 is off)", "COSMOS_EVENTS_MAXLEN", "bulk"),
    Cost(
        "durable",
        "durable acknowledgements: a replica and COSMOS_REDIS_MIN_REPLICAS=1 (WAIT per enqueue and lease)",
        "COSMOS_REDIS_MIN_REPLICAS",
        "bulk",
    ),
    Cost("indexes", "the console's search indexes (COSMOS_INDEXES=0 is off)", "COSMOS_INDEXES", "bulk"),
    Cost(
        "forwarding",
        "forwarding outcomes to the application's own callback (COSMOS_APP_WEBHOOK_SECRET)",
        "COSMOS_APP_WEBHOOK_SECRET",
        "delivered",
    ),
)
BY_NAME = {cost.name: cost for cost in COSTS}


def settings_aliases() -> set[str]:
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def supported(cost: Cost) -> bool:
    return cost.setting is None or cost.setting in settings_aliases()


def shipped_state(cost: Cost) -> bool:
    """On or off in a deployment made from the shipped files with default settings."""
    if cost.name == "durable":
        return False  # COSMOS_REDIS_MIN_REPLICAS defaults to 0: the HA profile switches it on
    return supported(cost)


def shipped_appendfsync() -> str:
    """The appendfsync policy of the single Redis that docker-compose.yml ships.

    Its `redis` service runs deploy/redis/single.conf; a `--appendfsync` flag in the compose file
    would override that. everysec (Redis's default) if neither names one.
    """
    for path, pattern in (
        (ROOT / "docker-compose.yml", r"--appendfsync\s+(\w+)"),
        (ROOT / "deploy" / "redis" / "single.conf", r"(?m)^\s*appendfsync\s+(\w+)"),
    ):
        try:
            found = re.search(pattern, path.read_text())
        except OSError:
            continue
        if found:
            return found.group(1)
    return "everysec"


def worker_env(states: dict[str, bool]) -> dict[str, str]:
    """Environment for workers and producers that puts the settings-driven costs in `states`."""
    env: dict[str, str] = {}
    if supported(BY_NAME["events"]) and not states.get("events", True):
        env["COSMOS_EVENTS_MAXLEN"] = "0"
    if supported(BY_NAME["durable"]):
        env["COSMOS_REDIS_MIN_REPLICAS"] = "1" if states.get("durable") else "0"
    if supported(BY_NAME["indexes"]) and not states.get("indexes", True):
        env["COSMOS_INDEXES"] = "0"
    return env


def parse_states(items: list[str]) -> dict[str, bool]:
    """`--set NAME=on|off` values; ValueError naming the bad one."""
    states = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in BY_NAME or value not in ("on", "off"):
            raise ValueError(f"--set {item!r}: expected one of {', '.join(BY_NAME)} =on|off")
        states[name] = value == "on"
    return states
