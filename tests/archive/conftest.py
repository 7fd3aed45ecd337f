"""Archive tests run against both backends: a temp SQLite file and the session's own PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/archive.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def archive_env(base_env, archive_url) -> dict[str, str]:
    return {**base_env, "COSMOS_ARCHIVE_URL": archive_url}
