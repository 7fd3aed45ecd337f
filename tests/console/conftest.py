"""Console fixtures: users with real argon2 hashes, the app on the test's Redis, logged-in clients."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.users import encode_hash, parse_users
from ledger.store import Ledger
from tests.console.helpers import OPERATOR, VIEWER, login


@pytest.fixture(scope="session")
def users_value() -> str:
    """COSMOS_CONSOLE_USERS for the tests (hashing costs ~0.1 s, so once per session)."""
    return " ".join(f"{name}:{role}:{encode_hash(password)}" for name, role, password in (OPERATOR, VIEWER))


@pytest.fixture
def console_settings(settings_for, users_value):
    return settings_for(COSMOS_CONSOLE_USERS=users_value)


@pytest.fixture
def ledger(console_settings, redis_client) -> Ledger:
    return Ledger(redis_client, console_settings)


@pytest.fixture
def app(console_settings, redis_client):
    return create_app(console_settings, client=redis_client, background=False)


@pytest.fixture
def anon(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def operator(app):
    with TestClient(app) as client:
        assert login(client, OPERATOR[0], OPERATOR[2]).status_code == 303
        yield client


@pytest.fixture
def viewer(app):
    with TestClient(app) as client:
        assert login(client, VIEWER[0], VIEWER[2]).status_code == 303
        yield client


@pytest.fixture
def users(users_value):
    return parse_users(users_value)
