"""The archiver inside the workers, one writer at a time under a Redis lock (like the reconciler).

Each tick it reads the records waiting for the archive in bounded steps, writes each step in one
archive transaction, then lets each leave the to-archive set only if it did not change since it was
read. Every minute it also deletes rows past COSMOS_ARCHIVE_RETENTION_DAYS and redacts rows past
COSMOS_REDACT_AFTER_DAYS, a bounded step each. The archive being down stops none of sending: the
backlog waits in Redis, is shown by `stats`, and is written when the archive returns.
"""

from __future__ import annotations

import threading
import time
import uuid

import redis
import structlog
from sqlalchemy.exc import SQLAlchemyError

from archive.engine import masked
from archive.rows import row_from_hash
from archive.store import Archive
from ledger.schema import ARCHIVE_STEP
from worker.context import WorkerContext

log = structlog.get_logger("cosmos.archiver")

MAX_STEPS_PER_TICK = 10
"""Up to 10 × ARCHIVE_STEP records a tick while a full step comes back."""
MAINTENANCE_EVERY_S = 60.0
LOCK_TTL_MS = 120_000
"""Longer than a tick can take (20 steps, each a transaction): a second writer never overlaps."""
DAY_S = 86400


class Archiver(threading.Thread):
    """A daemon thread per worker process; the lock makes one of them write at a time."""

    def __init__(self, ctx: WorkerContext, archive: Archive, interval_s: float = 1.0):
        super().__init__(name="cosmos-archiver", daemon=True)
        self.ctx = ctx
        self.archive = archive
        self.interval_s = interval_s
        self.token = uuid.uuid4().hex
        self.stopping = threading.Event()
        self.next_maintenance = 0.0
        self.failing = False

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("archiver tick failed; Redis unreachable", error=str(exc))
            except Exception:
                log.exception("archiver tick failed")

    def tick(self) -> int:
        """Archive what waits, if this process holds the lock; returns records written."""
        ledger = self.ctx.ledger
        if not ledger.take_lock("archiver", self.token, LOCK_TTL_MS):
            return 0
        try:
            written = self._catch_up()
            if written is not None and time.time() >= self.next_maintenance:
                self.next_maintenance = time.time() + MAINTENANCE_EVERY_S
                self._maintain()
            return written or 0
        finally:
            ledger.release_lock("archiver", self.token)

    def _catch_up(self) -> int | None:
        """Write waiting records step by step; None if the archive failed (the error is kept for stats)."""
        ledger, written = self.ctx.ledger, 0
        for _ in range(MAX_STEPS_PER_TICK):
            pending = ledger.archive_pending(ARCHIVE_STEP)
            if not pending:
                if self.failing:  # nothing waits: ask the archive itself whether it is back
                    try:
                        self.archive.ping()
                    except SQLAlchemyError as exc:
                        self._failed(exc)
                        return None
                    self._recovered(0)
                break
            ids = [job_id for job_id, _ in pending]
            now = time.time()
            rows = [
                row_from_hash(ledger.keys.prefix, job_id, raw, now)
                for job_id, raw in zip(ids, ledger.raw_many(ids))
                if raw
            ]
            try:
                self.archive.write(rows)
            except SQLAlchemyError as exc:
                self._failed(exc)
                return None
            ledger.archived(pending)
            written += len(rows)
            if len(pending) < ARCHIVE_STEP:
                break
        if written:
            self._recovered(written)
        return written

    def _recovered(self, written: int) -> None:
        if self.failing:
            self.failing = False
            log.info("archive reachable again", written=written)
        self.ctx.redis.hset(self.ctx.keys.archiver_status, mapping={"ok_ts": time.time(), "last_error": ""})

    def _maintain(self) -> None:
        s, now = self.ctx.settings, time.time()
        try:
            if s.archive_retention_days:
                deleted = self.archive.delete_older_than(now - s.archive_retention_days * DAY_S)
                if deleted:
                    log.info("archive retention", deleted=deleted)
            if s.redact_after_days:
                redacted = self.archive.redact_older_than(now - s.redact_after_days * DAY_S)
                if redacted:
                    log.info("archive redaction", rows=redacted)
        except SQLAlchemyError as exc:
            self._failed(exc)

    def _failed(self, exc: SQLAlchemyError) -> None:
        url = self.ctx.settings.archive_url.get_secret_value()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0].replace(url, masked(url))[:300]
        if not self.failing:  # once per outage, not once a second
            log.warning("archive unavailable; records wait in Redis", error=reason)
        self.failing = True
        self.ctx.redis.hset(self.ctx.keys.archiver_status, mapping={"last_error": reason, "error_ts": time.time()})

    def stop(self) -> None:
        self.stopping.set()
