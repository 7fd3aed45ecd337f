"""The ledger's Lua scripts: the generated schema, the shared `common.lua`, then the script itself."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import redis

from config.redis_client import require_redis_version
from config.settings import Settings
from ledger.budget import Budget, BudgetDays
from ledger.schema import (
    COMMON_ARGS,
    INNER_SCRIPTS,
    ONCE_REPLY_FROM_RECORD,
    ONCE_SCRIPTS,
    SCRIPT_ARGS,
    SCRIPT_REPLIES,
    lua_prelude,
    lua_script_args,
    pack,
    script_args,
)

LUA_DIR = Path(__file__).parent / "lua"
SCRIPT_NAMES = tuple(SCRIPT_ARGS)


@cache
def script_source(name: str) -> str:
    common = (LUA_DIR / "common.lua").read_text()
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name in ONCE_SCRIPTS:
        body = f"local function step()\n{body}\nend\n{_once(name)}"
    return lua_prelude() + common + "\n" + _inner(name) + lua_script_args(name) + body


def _once(name: str) -> str:
    """A call repeated with its call id (redis-py's retry after a lost reply) answers what the first did;
    the kept reply leaves out what the record holds (ONCE_REPLY_FROM_RECORD) and the repeat reads it again."""
    positions = {n: i for i, n in enumerate(SCRIPT_REPLIES.get(name, ()), 1)}
    from_record = ", ".join(
        f"[{positions[n]}] = F.{field}" for n, field in ONCE_REPLY_FROM_RECORD.get(name, {}).items()
    )
    return f"""local FROM_RECORD = {{{from_record}}}  -- reply positions the record holds (a full reply only)
if A.call == '' then return step() end
local jk = key('job', A.job)
local prior = redis.call('HMGET', jk, F.call, F.call_reply)
if prior[1] == A.call then
  local out = cjson.decode(prior[2])
  if #out == #REPLY then
    for i, f in pairs(FROM_RECORD) do out[i] = redis.call('HGET', jk, f) or '' end
  end
  return out
end
local result = step()
if redis.call('EXISTS', jk) == 1 then
  local kept = result
  if #result == #REPLY and next(FROM_RECORD) then
    kept = {{}}
    for i, v in ipairs(result) do kept[i] = FROM_RECORD[i] and '' or v end
  end
  redis.call('HSET', jk, F.call, A.call, F.call_reply, cjson.encode(kept))
end
return result
"""


def _inner(name: str) -> str:
    """The script `name` runs inside itself as `<inner>_job(A)`, with the inner script's reply helpers."""
    inner = INNER_SCRIPTS.get(name)
    if inner is None:
        return ""
    helpers = "".join(line + "\n" for line in lua_script_args(inner).splitlines() if not line.startswith("local A ="))
    return f"local function {inner}_job(A)\n{helpers}{(LUA_DIR / f'{inner}.lua').read_text()}\nend\n"


class CommonArgs:
    """The arguments every ledger script gets first (ledger.schema.COMMON_ARGS): the settings' fixed ones
    and the budget days around now, packed again only when the budget day changes."""

    def __init__(self, settings: Settings):
        self.budget = Budget(settings)
        self._fixed = {
            "prefix": settings.redis_prefix,
            "retention_s": settings.retention_s,
            "events_maxlen": settings.events_maxlen,
            "grace_s": settings.requeue_grace_s,
            "clock_offset_s": settings.clock_offset_s,
        }
        self._packed: tuple[BudgetDays | None, tuple[object, ...]] = (None, ())

    def __call__(self) -> tuple[object, ...]:
        days = self.budget.days()
        if self._packed[0] is not days:
            self._packed = (days, pack(COMMON_ARGS, {**self._fixed, **self.budget.script_args(days)}))
        return self._packed[1]


class Scripts:
    """Runs the ledger's scripts by SHA, loading them again after a Redis restart or flush.

    Calls `evalsha` directly: redis-py's Script objects add a slow type check per call.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self.sources = {name: script_source(name) for name in SCRIPT_NAMES}
        self.shas = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in self.sources.items()}
        self.version_checked = False

    def load(self, name: str) -> None:
        """Load a script (the first call on this server, or after a restart); an old Redis is refused first."""
        if not self.version_checked:
            require_redis_version(self.client)
            self.version_checked = True
        self.client.script_load(self.sources[name])

    def run(self, name: str, *args: object) -> Any:
        try:
            return self.client.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]
        except redis.exceptions.NoScriptError:
            self.load(name)
            return self.client.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]

    def run_many(self, name: str, calls: list[tuple[object, ...]]) -> list[Any]:
        """The same script for many argument lists, in one round trip; the first error is raised."""
        results = self.run_each(name, calls)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def run_each(self, name: str, calls: list[tuple[object, ...]], wait: tuple[int, int] | None = None) -> list[Any]:
        """`run_many` with each call's own error (an exception instance) in its place, none raised.

        A call refused for a missing script (after a Redis restart) did not run: only those run again,
        once it is loaded, since another client may have loaded it between two calls of the pipeline.
        `wait` (replicas, timeout_ms): WAIT follows in the same pipeline; its answer is appended.
        """
        results = self._pipeline(name, calls, wait)
        missing = [i for i, r in enumerate(results[: len(calls)]) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            self.load(name)
            again = self._pipeline(name, [calls[i] for i in missing], wait)
            for i, result in zip(missing, again):
                results[i] = result
            if wait is not None:
                results[-1] = again[-1]
        return results

    def _pipeline(self, name: str, calls: list[tuple[object, ...]], wait: tuple[int, int] | None = None) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(self.shas[name], 0, *args)  # type: ignore[arg-type]
        if wait is not None:
            pipe.wait(*wait)
        return pipe.execute(raise_on_error=False)

    # Durable acknowledgements.
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
            self.load(name)  # none ran: load and run them all
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
        self.common = CommonArgs(settings)

    def __call__(self, name: str, rows: Sequence[object] = (), **args: object) -> Any:
        return self.scripts.run(name, *self.common(), *script_args(name, **args), *rows)
