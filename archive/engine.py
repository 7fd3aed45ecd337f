"""The archive's engine from COSMOS_ARCHIVE_URL: SQLite in WAL mode with a busy timeout, PostgreSQL
through psycopg 3; and the URL as it may be shown (password masked)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from config.errors import SettingsError

SQLITE_BUSY_MS = 30_000
"""A second writer on the same SQLite file waits this long for the lock instead of failing."""


def parse(url: str) -> URL:
    """The SQLAlchemy URL (postgresql:// runs on psycopg 3), or SettingsError naming the variable."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise SettingsError("COSMOS_ARCHIVE_URL: not a database URL (postgresql://…, sqlite:///PATH or none)") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise SettingsError(f"COSMOS_ARCHIVE_URL: {backend!r} is not supported (postgresql://… or sqlite:///PATH)")


def masked(url: str) -> str:
    """The URL with its password hidden: the only form logs, errors and Redis ever see."""
    try:
        return make_url(url.strip()).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def create_archive_engine(url: str) -> Engine:
    parsed = parse(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
        # No server-side prepared statements: a plan psycopg prepared while the table was small
        # (a sequential scan) would be kept as it grows, and each step's lookup would scan it.
        connect_args={"connect_timeout": 5, "application_name": "cosmos-sms", "prepare_threshold": None},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps commits atomic; fsync at checkpoints
    cursor.close()
