"""Each ledger script's arguments and replies are declared by name in `ledger/schema.py`; the Lua
reads exactly those names and Python builds every argument list from them."""

from __future__ import annotations

import re

import pytest

from ledger import schema
from ledger.scripts import LUA_DIR, SCRIPT_NAMES, script_source


def _names(pattern: str, text: str) -> set[str]:
    return set(re.findall(pattern, text))


@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_lua_reads_exactly_the_declared_arguments(script: str) -> None:
    body = (LUA_DIR / f"{script}.lua").read_text()
    # A script that runs another's body takes that one's arguments first; the inner body reads those.
    # A call id is read by the wrapper that keeps a once-script's reply, not by its body.
    inner = set(schema.SCRIPT_ARGS.get(schema.INNER_SCRIPTS.get(script, ""), ())) - {"call"}
    once = {"call"} if script in schema.ONCE_SCRIPTS else set()
    assert _names(r"\bA\.(\w+)", body) - inner == set(schema.SCRIPT_ARGS[script]) - inner - once
    assert set(schema.SCRIPT_ARGS[script][: len(inner)]) == inner
    assert "arg(" not in body
    # Only repeated rows are read by position, and only through their declared field offsets.
    for group, fields in schema.SCRIPT_ROWS.get(script, {}).items():
        assert _names(rf"\bROW\.{group}\.(\w+)", body) - {"width"} == set(fields), group
    if script not in schema.SCRIPT_ROWS:
        assert "ARGV" not in body


def test_common_lua_reads_the_common_arguments_by_name() -> None:
    body = (LUA_DIR / "common.lua").read_text()
    assert _names(r"\bCOMMON\.(\w+)", body) == set(schema.COMMON_ARGS)
    assert "ARGV" not in body


def test_replies_built_by_name_use_declared_fields() -> None:
    for script in SCRIPT_NAMES:
        body = (LUA_DIR / f"{script}.lua").read_text()
        for table in re.findall(r"reply\{(.*?)\}\s*$", body, re.S | re.M):
            fields = set(re.findall(r"(\w+)\s*=", table))
            assert fields <= set(schema.SCRIPT_REPLIES[script]), script


def test_generated_argument_table_follows_the_declaration() -> None:
    source = script_source("finish")
    start = len(schema.COMMON_ARGS)
    for i, name in enumerate(schema.SCRIPT_ARGS["finish"], start + 1):
        assert f'["{name}"] = ARGV[{i}]' in source


def test_an_argument_missing_or_unknown_fails_at_the_call() -> None:
    args = dict.fromkeys(schema.SCRIPT_ARGS["receipt"], "x")
    assert schema.script_args("receipt", **args) == ("x",) * len(args)
    with pytest.raises(ValueError, match="missing \\['price'\\]"):
        schema.script_args("receipt", **{k: v for k, v in args.items() if k != "price"})
    with pytest.raises(ValueError, match="unknown \\['prise'\\]"):
        schema.script_args("receipt", **{**args, "prise": 1})


def test_values_land_in_declared_order_whatever_the_call_order() -> None:
    names = schema.SCRIPT_ARGS["operate"]
    shuffled = dict(zip(reversed(names), reversed(range(len(names)))))
    assert schema.script_args("operate", **shuffled) == tuple(range(len(names)))
