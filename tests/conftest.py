"""Fixtures shared by every test: a private Redis, settings that point at it, real processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from config.settings import Settings
from tests.support.redis_server import RedisServer, start_private_redis

# The sandbox fixtures (`sandbox`, `sandbox_factory`) come from the installed plugin sandbox/pytest_plugin.py.
pytest_plugins = [
    "tests.support.worker_fixture",
    "tests.support.inprocess_worker",
    "tests.support.receiver_fixture",
    "tests.support.postgres_fixture",
    "tests.support.smsc_fixture",
]

TEST_API_KEY = "test-key-1EdZEH7484krjSQt1zg782"
TEST_API_SECRET = "test-SECRET-L3tj45j45934534kKcrwrRaoGP"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """The session's own redis-server on a free port; stopped at the end."""
    server = start_private_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop(graceful=False)


@pytest.fixture(scope="session")
def sandbox_env() -> dict[str, str]:
    """Sandbox processes take the test credentials that `base_env` gives the workers (overrides the plugin's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(COSMOS_API_KEY=TEST_API_KEY, COSMOS_API_SECRET=TEST_API_SECRET, PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test: tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_server, prefix):
    client = redis_server.client()
    yield client
    # Only our private server, and only this test's keys; a thousand per round trip.
    batch: list[str] = []
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


@pytest.fixture
def base_env(redis_server, prefix, tmp_path) -> dict[str, str]:
    """Environment for processes a test starts: private Redis, own prefix, test credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=redis_server.url,
        COSMOS_REDIS_PREFIX=prefix,
        COSMOS_API_KEY=TEST_API_KEY,
        COSMOS_API_SECRET=TEST_API_SECRET,
        COSMOS_RETRY_BACKOFF_BASE_S="0.01",
        COSMOS_RETRY_BACKOFF_MAX_S="0.05",
        COSMOS_RECONCILER_INTERVAL_S="0.1",
        COSMOS_LOG_FORMAT="json",
        COSMOS_TESTING="1",
        COSMOS_ARCHIVE_URL="none",  # archive tests set a temp SQLite file or the session's PostgreSQL
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def settings_for(base_env):
    """Build Settings from the test environment plus overrides (no os.environ writes)."""

    def build(**overrides: str) -> Settings:
        env = {**base_env, **overrides}
        values = {k: v for k, v in env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"}
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def settings(settings_for) -> Settings:
    return settings_for()
