"""The ledger's Lua scripts: the generated schema, the shared `common.lua`, then the script itself."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings
from ledger.schema import COMMON_ARGS, SCRIPT_ARGS, lua_prelude, lua_script_args, pack, script_args

LUA_DIR = Path(__file__).parent / "lua"
SCRIPT_NAMES = tuple(SCRIPT_ARGS)


@cache
def script_source(name: str) -> str:
    common = (LUA_DIR / "common.lua").read_text()
    return lua_prelude() + common + "\n" + lua_script_args(name) + (LUA_DIR / f"{name}.lua").read_text()


def common_args(settings: Settings) -> tuple[object, ...]:
    """The arguments every ledger script gets first (ledger.schema.COMMON_ARGS)."""
    values = {
        "prefix": settings.redis_prefix,
        "retention_s": settings.retention_s,
        "events_maxlen": settings.events_maxlen,
        "grace_s": settings.requeue_grace_s,
        "clock_offset_s": settings.clock_offset_s,
    }
    return pack(COMMON_ARGS, values)


class Scripts:
    """Runs the ledger's scripts by SHA, loading them again after a Redis restart or flush.

    Calls `evalsha` directly: redis-py's Script objects add a slow type check per call.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self.sources = {name: script_source(name) for name in SCRIPT_NAMES}
        self.shas = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in self.sources.items()}

    def run(self, name: str, *args: object) -> Any:
        try:
            return self.client.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]
        except redis.exceptions.NoScriptError:
            self.client.script_load(self.sources[name])
            return self.client.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]

    def run_many(self, name: str, calls: list[tuple[object, ...]]) -> list[Any]:
        """The same script for many argument lists, in one round trip; the first error is raised."""
        results = self.run_each(name, calls)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def run_each(self, name: str, calls: list[tuple[object, ...]]) -> list[Any]:
        """`run_many` with each call's own error (an exception instance) in its place, none raised.

        A call refused for a missing script (after a Redis restart) did not run: only those run again,
        once it is loaded, since another client may have loaded it between two calls of the pipeline.
        """
        results = self._pipeline(name, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            self.client.script_load(self.sources[name])
            for i, result in zip(missing, self._pipeline(name, [calls[i] for i in missing])):
                results[i] = result
        return results

    def _pipeline(self, name: str, calls: list[tuple[object, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]
        return pipe.execute(raise_on_error=False)

    # --- durable acknowledgements (issue 15, helper `ha`) ---------------------------------------------
    def run_durably(self, name: str, args: tuple[object, ...], replicas: int, timeout_ms: int) -> tuple[Any, int]:
        """Run one script, then WAIT for `replicas` replicas on the same connection, in one round trip.

        Returns (the script's result, replicas that acknowledged). WAIT covers only its own connection's
        writes, hence one pipeline; with `replicas` 0 it is not sent and the count is 0.
        """
        results, acked = self.run_many_durably(name, [args], replicas, timeout_ms)
        return results[0], acked

    def run_many_durably(
        self, name: str, calls: list[tuple[object, ...]], replicas: int, timeout_ms: int
    ) -> tuple[list[Any], int]:
        """`run_many`, followed in the same pipeline by WAIT `replicas` `timeout_ms`: (results, acked replicas)."""
        if replicas <= 0:
            return self.run_many(name, calls), 0
        results: list[Any] = []
        acked: Any = 0
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for args in calls:
                pipe.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]
            pipe.wait(replicas, timeout_ms)
            *results, acked = pipe.execute(raise_on_error=False)
            if not any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                break
            self.client.script_load(self.sources[name])  # none ran: load and run them all
        for result in (*results, acked):
            if isinstance(result, Exception):
                raise result
        return results, int(acked)


class ScriptCalls:
    """The ledger's scripts for one prefix, each called with its declared arguments by name.

    For ledger-side classes other than `Ledger` (forwards, events, search, locks); `rows` are the flat
    arguments of a script's repeated rows (`ledger.schema.row_args`).
    """

    def __init__(self, client: redis.Redis, settings: Settings):
        self.scripts = Scripts(client)
        self.common = common_args(settings)

    def __call__(self, name: str, rows: Sequence[object] = (), **args: object) -> Any:
        return self.scripts.run(name, *self.common, *script_args(name, **args), *rows)
