"""Session fixtures: one private PostgreSQL per test session, a database per xdist worker.

Under xdist every worker is a process with its own session: the first to need PostgreSQL starts it
and writes where it listens next to the session's temp dirs (under a file lock); the others use that
one, and the controller stops it when the whole run ends.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, start_private_postgres

STATE = "cosmos-postgres.json"


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """Started on first use only, so runs without archive tests never pay for it."""
    shared = _shared_dir(tmp_path_factory)
    with open(shared / "cosmos-postgres.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = shared / STATE
        if state.exists():
            info = json.loads(state.read_text())
            server = PostgresServer(Path(info["bin_dir"]), Path(info["dir"]), info["port"])
        else:
            started = start_private_postgres()
            if started is None:
                pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) and none installable")
            server = started
            state.write_text(json.dumps({"bin_dir": str(server.bin_dir), "dir": str(server.dir), "port": server.port}))
    yield server
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        _stop(shared)


def _stop(shared: Path) -> None:
    state = shared / STATE
    if state.exists():
        info = json.loads(state.read_text())
        server = PostgresServer(Path(info["bin_dir"]), Path(info["dir"]), info["port"])
        try:
            server.stop("immediate")
        finally:
            server.remove()
            state.unlink()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The xdist controller stops the server its workers shared (their temp dirs are under its own)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if not os.environ.get("PYTEST_XDIST_WORKER") and factory is not None:
        _stop(factory.getbasetemp())


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """This xdist worker's own database in the session's PostgreSQL."""
    return postgres_server.create_database(f"cosmos_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
