"""Open this process's archive from the settings, or refuse to start with one line saying why."""

from __future__ import annotations

import random
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from archive.engine import create_archive_engine, masked
from archive.schema import ArchiveRefused, archive_identity, ensure_schema
from archive.store import Archive
from config.settings import Settings
from ledger.store import Ledger


def open_archive(settings: Settings, ledger: Ledger) -> Archive | None:
    """The prefix's archive (None with COSMOS_ARCHIVE_URL=none), its schema current and its identity
    the one Redis records; ArchiveRefused otherwise."""
    url = settings.archive_url.get_secret_value()
    recorded = ledger.recorded_archive()
    if not settings.archiving:
        if recorded:
            raise ArchiveRefused(
                f"COSMOS_ARCHIVE_URL is none, but prefix {settings.redis_prefix!r} archives to "
                f"{recorded.split(' ', 1)[-1]}: set COSMOS_ARCHIVE_URL to that archive"
            )
        return None
    shown = masked(url)
    engine = create_archive_engine(url)
    try:
        _ensure_schema_among_peers(engine, shown)
        identity = archive_identity(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ArchiveRefused(f"cannot open or create the archive at COSMOS_ARCHIVE_URL={shown}: {reason}") from None
    mine = f"{identity} {shown}"
    recorded = ledger.claim_archive(mine)
    if recorded.split(" ", 1)[0] != identity:
        engine.dispose()
        raise ArchiveRefused(
            f"COSMOS_ARCHIVE_URL={shown} is archive {identity}, but prefix {settings.redis_prefix!r} archives to "
            f"{recorded.split(' ', 1)[-1]} (archive {recorded.split(' ', 1)[0]}): a second archive would be partial"
        )
    return Archive(engine, settings.redis_prefix)


SCHEMA_TRIES = 5
"""Processes started together (`cosmos-sms worker`) create a new archive at once: all but one fail
("table already exists") and find the schema made when they look again."""


def _ensure_schema_among_peers(engine: Engine, shown: str) -> None:
    for attempt in range(SCHEMA_TRIES):
        try:
            ensure_schema(engine, shown)
            return
        except SQLAlchemyError:
            if attempt == SCHEMA_TRIES - 1:
                raise
            time.sleep(random.uniform(0.2, 0.6))  # noqa: S311  another process is creating the schema
