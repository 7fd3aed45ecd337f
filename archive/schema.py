"""The archive's schema version (Alembic migrations shipped in this package) and its identity.

A process opens its archive once at start: an empty database gets the schema, a SQLite file is
upgraded in place, and any other archive on another version refuses to start naming
`cosmos-sms archive migrate`. The archive's identity (a UUID in `archive_meta`) is recorded in Redis
under the prefix, so a second host or working directory never starts a second, partial archive.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from archive.tables import archive_meta
from config.errors import CosmosSmsError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_VERSION = "0001"
"""The newest migration's revision (a test checks it is Alembic's head): a process that finds it in
place starts without loading Alembic."""


class ArchiveRefused(CosmosSmsError):
    """The archive cannot be used by this process; the message says why and what to do."""


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The version Alembic recorded in the archive (None before the first migration)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Create or upgrade the schema to the newest version; returns (before, after)."""
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)  # our caller says what changed, in one line
    with engine.begin() as connection:
        before = current_revision(connection)
        command.upgrade(_config(connection), "head")
        return before, current_revision(connection)


def ensure_schema(engine: Engine, shown_url: str) -> None:
    """The schema this code needs, or ArchiveRefused naming `cosmos-sms archive migrate`."""
    head = SCHEMA_VERSION
    with engine.connect() as connection:
        current = current_revision(connection)
        empty = not inspect(connection).get_table_names()
    if current == head:
        return
    if empty or engine.dialect.name == "sqlite":
        migrate(engine)
        return
    raise ArchiveRefused(
        f"the archive at COSMOS_ARCHIVE_URL={shown_url} has schema version {current or 'none'}, this code needs "
        f"{head}: run `cosmos-sms archive migrate`"
    )


def archive_identity(engine: Engine) -> str:
    """The archive's UUID, created on first use (two processes racing agree on one)."""
    query = select(archive_meta.c.value).where(archive_meta.c.name == "identity")
    with engine.connect() as connection:
        found = connection.execute(query).scalar()
    if found:
        return str(found)
    try:
        with engine.begin() as connection:
            connection.execute(insert(archive_meta).values(name="identity", value=str(uuid.uuid4())))
    except IntegrityError:
        pass  # another process created it first
    with engine.connect() as connection:
        return str(connection.execute(query).scalar_one())
