"""The Redis client factory: URL forms, Sentinel, role timeouts, riding out a blip, bad input."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx
import pytest
import redis

from config.celery import celery_config
from config.errors import EnqueueFailed
from config.redis_client import (
    TIMEOUTS,
    BadRedisUrl,
    parse_sentinel_url,
    redis_client,
    ride_out,
)
from config.settings import SettingsError, load_settings
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import ROOT, cosmos_cmd, spawn, stop
from tests.support.sentinel import MASTER_NAME, start_sentinel


def test_a_sentinel_list_parses_in_kombus_form():
    target = parse_sentinel_url("sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://h3")
    assert target.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 26379)]
    assert (target.db, target.password) == (2, "s3cret")
    with pytest.raises(BadRedisUrl):
        parse_sentinel_url("sentinel://a:1;redis://b:2")


def test_a_sentinel_url_without_a_master_name_is_refused_naming_the_variable():
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None, REDIS_URL="sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380")
    assert str(err.value).startswith("COSMOS_REDIS_SENTINEL_MASTER")
    with pytest.raises(SettingsError) as err:
        load_settings(
            _env_file=None, REDIS_URL="sentinel://127.0.0.1:26379;redis://x:1", COSMOS_REDIS_SENTINEL_MASTER="m"
        )
    assert str(err.value).startswith("REDIS_URL")


def test_the_command_line_exits_2_with_one_line_naming_the_master_setting(base_env):
    env = {**base_env, "REDIS_URL": f"sentinel://127.0.0.1:{free_port()}"}
    result = subprocess.run(
        cosmos_cmd("stats"), check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "COSMOS_REDIS_SENTINEL_MASTER" in line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_every_role_has_named_timeouts_and_the_producer_fails_fastest():
    assert set(TIMEOUTS) == {"producer", "worker", "receiver", "console", "cli", "demo"}
    assert TIMEOUTS["producer"].socket_s < TIMEOUTS["worker"].socket_s


_HELD: list[socket.socket] = []
"""Ports bound and never listened on: connecting is refused, and no other process can take them."""


def _dead_sentinels(count: int) -> str:
    ports = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        _HELD.append(sock)
        ports.append(sock.getsockname()[1])
    return ";".join(f"sentinel://127.0.0.1:{port}" for port in ports)


@pytest.fixture
def silent_listener():
    """A TCP port that accepts connections (the kernel's backlog) and never answers: a hung sentinel."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_sentinel_list_is_enqueue_failed_within_its_bound(settings_for, kind, silent_listener):
    url = _dead_sentinels(3) if kind == "refused" else f"sentinel://127.0.0.1:{silent_listener};" + _dead_sentinels(1)
    settings = settings_for(REDIS_URL=url, COSMOS_REDIS_SENTINEL_MASTER="mymaster", COSMOS_ENQUEUE_TIMEOUT_S="2")
    producer = SmsProducer(settings)
    started = time.monotonic()
    with pytest.raises(EnqueueFailed):
        producer.send_sms("033334445566770", "Shop", "hello")
    # The bound, plus at most one try that began before it (two sentinel rounds, 1 s socket wait each).
    assert time.monotonic() - started < settings.enqueue_timeout_s + 3


def test_the_factory_reaches_the_primary_through_a_sentinel(settings_for, redis_server, tmp_path, prefix):
    sentinel = start_sentinel(tmp_path / "s", free_port(), "127.0.0.1", redis_server.port)
    try:
        settings = settings_for(
            REDIS_URL=f"{sentinel.url};sentinel://127.0.0.1:{free_port()}", COSMOS_REDIS_SENTINEL_MASTER=MASTER_NAME
        )
        for role in TIMEOUTS:
            client = redis_client(settings, role)
            client.set(f"{prefix}:via-sentinel", role)
            assert redis_server.client().get(f"{prefix}:via-sentinel") == role
            client.close()
        conf = celery_config(settings)
        for options in (conf["broker_transport_options"], conf["result_backend_transport_options"]):
            assert options["master_name"] == MASTER_NAME
            assert options["sentinel_kwargs"]["socket_timeout"] > 0
        assert conf["broker_url"].startswith("sentinel://")
    finally:
        sentinel.stop()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/login").status_code == 200
    except httpx.HTTPError:
        return False


def test_the_console_and_pause_work_on_a_sentinel_url(base_env, redis_server, tmp_path, prefix):
    from console.users import encode_hash
    from tests.console.helpers import OPERATOR, login, token

    name, role, password = OPERATOR
    sentinel = start_sentinel(tmp_path / "s", free_port(), "127.0.0.1", redis_server.port)
    env = {**base_env, "REDIS_URL": sentinel.url, "COSMOS_REDIS_SENTINEL_MASTER": MASTER_NAME}
    pause_key = f"{prefix}:pause"
    console = None
    try:
        paused = subprocess.run(
            cosmos_cmd("pause", "--reason", "brake via sentinel"),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert paused.returncode == 0, paused.stderr
        assert "brake via sentinel" in (redis_server.client().hget(pause_key, "op:all") or "")

        port = free_port()
        console_env = {**env, "COSMOS_CONSOLE_USERS": f"{name}:{role}:{encode_hash(password)}"}
        console = spawn(cosmos_cmd("console", "--port", str(port)), console_env, tmp_path / "console.log")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: _answers(client), timeout=30, what="the console on a sentinel URL")
            assert login(client, name, password).status_code == 303
            assert "brake via sentinel" in client.get("/controls").text
            resumed = client.post("/controls/resume", data={"lane": "all", "csrf_token": token(client)})
            assert resumed.status_code in (200, 303)
        assert redis_server.client().hget(pause_key, "op:all") is None
    finally:
        if console is not None:
            stop(console)
        sentinel.stop()


def test_the_sentinels_password_goes_to_kombu_in_sentinel_kwargs(settings_for):
    settings = settings_for(
        REDIS_URL="sentinel://127.0.0.1:26379", COSMOS_REDIS_SENTINEL_MASTER="m", COSMOS_REDIS_SENTINEL_PASSWORD="pw"
    )
    assert celery_config(settings)["broker_transport_options"]["sentinel_kwargs"]["password"] == "pw"


def test_riding_out_a_blip_tries_the_call_first_then_retries_within_the_bound():
    calls: list[str] = []
    slept: list[float] = []

    def flaky(value):
        calls.append(value)
        if len(calls) < 3:
            raise redis.ConnectionError("blip")
        return value

    assert ride_out(lambda: flaky("x"), 10, sleep=slept.append) == "x"
    assert len(calls) == 3 and len(slept) == 1

    def down():
        raise redis.TimeoutError("down")

    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        ride_out(down, 0.3)
    assert time.monotonic() - started < 1.5

    def refused():
        calls.append("refused")
        raise redis.ResponseError("WRONGTYPE")

    calls.clear()
    with pytest.raises(redis.ResponseError):
        ride_out(refused, 10)
    assert calls == ["refused"]  # not a blip: never retried


def test_a_redis_older_than_7_is_refused_in_one_line():
    from config.errors import SettingsError
    from config.redis_client import require_redis_version

    class Server:  # a stand-in for INFO's one field: this machine runs no Redis 6
        def __init__(self, version: str):
            self.version = version

        def info(self, section: str) -> dict[str, str]:
            return {"redis_version": self.version}

    with pytest.raises(
        SettingsError, match=r"^REDIS_URL: Redis 6\.2\.6 is too old; cosmos-sms needs Redis 7\.0 or newer$"
    ):
        require_redis_version(Server("6.2.6"))  # type: ignore[arg-type]
    require_redis_version(Server("7.0.15"))  # type: ignore[arg-type]
    require_redis_version(Server("7.2.4"))  # type: ignore[arg-type]  # what valkey-server 8.1 reports
