"""Session fixtures: one private PostgreSQL per test session, a database per xdist worker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, start_private_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Started on first use only, so runs without archive tests never pay for it."""
    server = start_private_postgres()
    if server is None:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) and none installable")
    yield server
    server.stop("immediate")
    server.remove()


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """This xdist worker's own database in the session's PostgreSQL."""
    return postgres_server.create_database(f"cosmos_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
