"""Redis Sentinel processes for tests: a sentinel watching a private primary, on loopback or any address."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.polling import wait_for
from tests.support.redis_server import redis_binary

MASTER_NAME = "cosmos"
DOWN_AFTER_MS = 1000
"""Sentinels call a silent primary down after this long (milliseconds): a test failover within seconds."""
FAILOVER_TIMEOUT_MS = 5000


def sentinel_conf(dir: Path, port: int, master_host: str, master_port: int, quorum: int, bind: str) -> Path:
    """A sentinel's config file (sentinels rewrite theirs, so each has its own)."""
    conf = dir / f"sentinel-{bind}-{port}.conf"
    conf.write_text(
        f"port {port}\nbind {bind}\ndir {dir}\nprotected-mode no\n"
        f"sentinel monitor {MASTER_NAME} {master_host} {master_port} {quorum}\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n"
    )
    return conf


@dataclass
class SentinelProcess:
    host: str
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"sentinel://{self.host}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, decode_responses=True, socket_timeout=2, socket_connect_timeout=1
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_sentinel(
    dir: Path,
    port: int,
    master_host: str,
    master_port: int,
    *,
    quorum: int = 1,
    bind: str = "127.0.0.1",
    prefix: tuple[str, ...] = (),
) -> SentinelProcess:
    """A sentinel process (`prefix` e.g. `ip netns exec NAME` to run it inside a namespace)."""
    dir.mkdir(parents=True, exist_ok=True)
    conf = sentinel_conf(dir, port, master_host, master_port, quorum, bind)
    proc = subprocess.Popen(
        [*prefix, redis_binary(), str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sentinel = SentinelProcess(bind, port, proc)
    wait_for(lambda: _answers(sentinel), timeout=10, what=f"sentinel on {bind}:{port}")
    return sentinel


def _answers(sentinel: SentinelProcess) -> bool:
    try:
        return bool(sentinel.client().ping())
    except redis.RedisError:
        return False
