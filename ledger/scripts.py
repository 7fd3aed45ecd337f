"""The ledger's Lua scripts, each prefixed with the shared `common.lua` and registered once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis

LUA_DIR = Path(__file__).parent / "lua"
SCRIPT_NAMES = ("enqueue", "begin", "finish", "receipt", "claim", "operate")


@cache
def script_source(name: str) -> str:
    return (LUA_DIR / "common.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text()


def register_scripts(client: redis.Redis) -> dict[str, "redis.commands.core.Script"]:
    """Scripts bound to `client`; redis-py runs them by SHA and reloads after a Redis restart."""
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
