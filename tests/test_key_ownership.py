"""The ledger is the only door to its state: checked over the source of every installed package.

No script, `register_script`, `.eval(` or hand-made Redis client outside `ledger/` and
`config/redis_client.py`; no module outside `ledger/` and `config/` spells a ledger-owned key or
writes one; every key shape is marked with its owner, and every ledger hash has declared fields.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from config import keys as key_shapes
from ledger import schema
from ledger.scripts import LUA_DIR

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
]
"""The installed packages (not tests/, not bench/)."""
DOORS = ("ledger/",)
"""Where ledger state may be written and scripts run."""


def _segment(name: str) -> str:
    """The first segment after the prefix of a key shape (a method gets a sample argument)."""
    shape = getattr(key_shapes.Keys("P"), name)
    key = shape("x") if callable(shape) else shape
    return key.removeprefix("P:").split(":", 1)[0]


SEGMENTS = {name: _segment(name) for name in key_shapes.LEDGER_OWNED}
"""The first segment after the prefix of each ledger-owned key shape."""
WRITES = frozenset(
    "hset hsetnx hdel hincrby hincrbyfloat hmset set setex setnx delete unlink expire pexpire persist zadd zrem "
    "zincrby zremrangebyscore zremrangebyrank sadd srem smove xadd xtrim xdel lpush rpush lpop rpop lrem "
    "rename incr incrby decr getdel".split()
)


def _sources() -> list[tuple[str, str]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((path.relative_to(ROOT).as_posix(), path.read_text()))
    return out


def _outside(rel: str, *allowed: str) -> bool:
    return not rel.startswith(allowed)


def test_no_script_or_client_is_made_outside_the_ledger_and_the_factory() -> None:
    found = [
        f"{rel}:{n}: {line.strip()}"
        for rel, text in _sources()
        if _outside(rel, *DOORS, "config/redis_client.py")
        for n, line in enumerate(text.splitlines(), 1)
        if re.search(r"register_script|\.eval\(|\.evalsha\(|Redis\.from_url|redis\.Redis\(|StrictRedis", line)
    ]
    assert found == []


def _literal_text(node: ast.AST) -> str | None:
    """A string constant, or an f-string with `{}` for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def test_no_module_outside_the_ledger_and_config_spells_a_ledger_key() -> None:
    segments = "|".join(sorted(set(SEGMENTS.values())))
    shape = re.compile(rf"(^|\{{\}}):({segments})(:|$)")
    found = []
    for rel, text in _sources():
        if not _outside(rel, *DOORS, "config/"):
            continue
        for node in ast.walk(ast.parse(text)):
            literal = _literal_text(node)
            if literal is not None and "\n" not in literal and shape.search(literal):
                found.append(f"{rel}:{getattr(node, 'lineno', 0)}: {literal!r}")
    assert found == []


def _names_a_ledger_key(node: ast.AST) -> bool:
    """`<...>.keys.<ledger-owned>` or `Keys(...).<ledger-owned>`, called or not."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in key_shapes.LEDGER_OWNED:
            holder = sub.value
            if (isinstance(holder, ast.Attribute) and holder.attr == "keys") or (
                isinstance(holder, ast.Name) and holder.id in ("keys", "k")
            ):
                return True
    return False


def test_no_module_outside_the_ledger_writes_a_ledger_key() -> None:
    found = []
    for rel, text in _sources():
        if not _outside(rel, *DOORS):
            continue
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
                and node.args
                and _names_a_ledger_key(node.args[0])
            ):
                found.append(f"{rel}:{node.lineno}: {node.func.attr}")
    assert found == []


def _key_shapes() -> set[str]:
    return {name for name in vars(key_shapes.Keys) if not name.startswith("_") and name != "prefix"}


def test_every_key_shape_has_one_owner() -> None:
    owners = (key_shapes.LEDGER_OWNED, key_shapes.PROCESS_OWNED, key_shapes.BROKER_OWNED)
    assert set().union(*owners) == _key_shapes()
    assert sum(len(o) for o in owners) == len(_key_shapes())


def test_every_ledger_hash_is_declared_with_its_fields() -> None:
    hashes = {
        name for name in key_shapes.LEDGER_OWNED if (getattr(key_shapes.Keys, name).__doc__ or "").startswith("Hash")
    }
    assert hashes == set(schema.LEDGER_HASHES)


_HASH_VARS = {"BREAKER": "breaker", "PAUSE": "pause", "key('rate')": "rate", "bk": "batch", "fk": "forward"}
_CALL = re.compile(
    r"redis\.call\('(HSET|HSETNX|HMGET|HGET|HDEL|HEXISTS|HINCRBY)', ([^,]+), (.*?)\)\s*(?:$|==|end|then)"
)


def _top_level_args(text: str) -> list[str]:
    args, depth, cur = [], 0, ""
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*args, cur.strip()]


@pytest.mark.parametrize("lua", sorted(p.name for p in LUA_DIR.glob("*.lua")))
def test_scripts_use_only_declared_fields_of_the_ledger_hashes(lua: str) -> None:
    for line in (LUA_DIR / lua).read_text().splitlines():
        for command, target, rest in _CALL.findall(line):
            hash_name = _HASH_VARS.get(target.strip())
            if hash_name is None:
                continue
            args = _top_level_args(rest)
            fields = args[::2] if command in ("HSET", "HSETNX", "HINCRBY") else args
            declared = schema.LEDGER_HASHES[hash_name]
            for field in fields:
                literal = re.fullmatch(r"'([^']*)'(?: \.\. .*)?", field)
                if literal is None:
                    continue  # a computed field name
                name = literal.group(1)
                families = [f for f in declared if f.endswith(":")]
                assert name in declared or any(name.startswith(f) for f in families), f"{lua}: {hash_name}.{name}"
