"""`Archive`: writes rows and their daily facts in one transaction, and answers history, export,
spend and batch questions from indexes and facts (never a scan of every row)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from archive.redaction import redacted_fields
from archive.tables import FACT_KEYS, archive_meta, daily_facts, messages

ACCEPTED = ("sent", "delivered", "not_delivered")
"""States of a message COSMOS accepted."""
EXPORT_PAGE = 2000
"""Rows read per query while exporting: memory stays constant whatever the window."""
MAINTENANCE_STEP = 1000
"""Rows one retention or redaction step touches."""


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _fact_key(row: Any) -> tuple[str, ...]:
    return (
        row["prefix"],
        day_of(row["created_ts"]),
        row["state"] or "",
        row["dead_reason"] or "",
        row["sender"] or "",
        row["batch_id"] or "",
        row["route"] or "",
    )


@dataclass(frozen=True)
class HistoryQuery:
    to: str | None = None
    message_id: str | None = None
    batch: str | None = None
    state: str | None = None
    since: float | None = None
    until: float | None = None
    after: tuple[float, str] | None = None
    """Keyset cursor: rows strictly older than (created_ts, job_id)."""


class Archive:
    """The archive of one prefix."""

    def __init__(self, engine: Engine, prefix: str):
        self.engine = engine
        self.prefix = prefix
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # --- writing ----------------------------------------------------------------------
    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert rows and move the daily facts by each row's change (old row out, new row in), atomically."""
        if not rows:
            return
        ids = [r["job_id"] for r in rows]
        m = messages.c
        with self.engine.begin() as conn:
            old = {
                r.job_id: r._mapping
                for r in conn.execute(
                    select(
                        m.prefix, m.job_id, m.created_ts, m.state, m.dead_reason, m.sender, m.batch_id, m.route, m.price
                    ).where(m.prefix == self.prefix, m.job_id.in_(ids))
                )
            }
            deltas: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0.0])
            for row in rows:
                before = old.get(row["job_id"])
                if before is not None:
                    d = deltas[_fact_key(before)]
                    d[0] -= 1
                    d[1] -= before["price"] or 0.0
                d = deltas[_fact_key(row)]
                d[0] += 1
                d[1] += row["price"] or 0.0
            stmt = self._insert(messages)
            updated = {c.name: stmt.excluded[c.name] for c in messages.columns if not c.primary_key}
            conn.execute(stmt.on_conflict_do_update(index_elements=["prefix", "job_id"], set_=updated), list(rows))
            facts = [
                {**dict(zip(FACT_KEYS, key)), "messages": n, "price": price}
                for key, (n, price) in deltas.items()
                if n != 0 or abs(price) > 1e-12
            ]
            if facts:
                fstmt = self._insert(daily_facts)
                conn.execute(
                    fstmt.on_conflict_do_update(
                        index_elements=list(FACT_KEYS),
                        set_={
                            "messages": daily_facts.c.messages + fstmt.excluded.messages,
                            "price": daily_facts.c.price + fstmt.excluded.price,
                        },
                    ),
                    facts,
                )

    def ping(self) -> None:
        """Raise unless the archive answers."""
        with self.engine.connect() as conn:
            conn.execute(select(1))

    # --- reading ----------------------------------------------------------------------
    def history(self, q: HistoryQuery, limit: int) -> list[Any]:
        """Rows matching `q`, newest first (created_ts, job_id descending), at most `limit`."""
        m = messages.c
        where = [m.prefix == self.prefix]
        if q.to:
            where.append(m.to == q.to)
        if q.message_id:
            where.append(m.message_id == q.message_id)
        if q.batch:
            where.append(m.batch_id == q.batch)
        if q.state:
            where.append(m.state == q.state)
        if q.since is not None:
            where.append(m.created_ts >= q.since)
        if q.until is not None:
            where.append(m.created_ts < q.until)
        if q.after is not None:
            where.append(tuple_(m.created_ts, m.job_id) < tuple_(*q.after))
        query = select(messages).where(and_(*where)).order_by(m.created_ts.desc(), m.job_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def get(self, job_ids: Sequence[str]) -> dict[str, Any]:
        m = messages.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(messages).where(m.prefix == self.prefix, m.job_id.in_(list(job_ids))))
            return {r.job_id: r for r in rows}

    def window(self, since: float, until: float) -> Iterator[Any]:
        """Every row created in [since, until), oldest first, read a page at a time."""
        m = messages.c
        after: tuple[float, str] | None = None
        while True:
            where = [m.prefix == self.prefix, m.created_ts >= since, m.created_ts < until]
            if after is not None:
                where.append(tuple_(m.created_ts, m.job_id) > tuple_(*after))
            query = select(messages).where(*where).order_by(m.created_ts, m.job_id).limit(EXPORT_PAGE)
            with self.engine.connect() as conn:
                page = list(conn.execute(query))
            yield from page
            if len(page) < EXPORT_PAGE:
                return
            after = (page[-1].created_ts, page[-1].job_id)

    def spend(self, by: str, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """Messages, accepted, delivered and price per group, from the daily facts only."""
        f = daily_facts.c
        group = {
            "day": f.day,
            "month": func.substr(f.day, 1, 7),
            "batch": f.batch_id,
            "sender": f.sender,
            "route": f.route,
        }[by]
        where = [f.prefix == self.prefix]
        if since is not None:
            where.append(f.day >= day_of(since))
        if until is not None:
            where.append(f.day <= day_of(until))
        query = (
            select(
                group.label("key"),
                func.sum(f.messages).label("messages"),
                func.sum(case((f.state.in_(ACCEPTED), f.messages), else_=0)).label("accepted"),
                func.sum(case((f.state == "delivered", f.messages), else_=0)).label("delivered"),
                func.sum(f.price).label("price"),
            )
            .where(*where)
            .group_by(group)
            .order_by(group)
        )
        with self.engine.connect() as conn:
            out = []
            for r in conn.execute(query):
                if not r.messages:
                    continue
                out.append(
                    {
                        "key": r.key or None,
                        "messages": int(r.messages),
                        "accepted": int(r.accepted or 0),
                        "delivered": int(r.delivered or 0),
                        "price": round(float(r.price or 0), 6),
                    }
                )
            return out

    def daily(self, since_day: str) -> list[dict[str, Any]]:
        """Per day, state and dead reason from `since_day` on: messages and price (for the Reports charts)."""
        f = daily_facts.c
        query = (
            select(
                f.day, f.state, f.dead_reason, func.sum(f.messages).label("messages"), func.sum(f.price).label("price")
            )
            .where(f.prefix == self.prefix, f.day >= since_day)
            .group_by(f.day, f.state, f.dead_reason)
            .order_by(f.day)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "day": r.day,
                    "state": r.state,
                    "dead_reason": r.dead_reason,
                    "messages": int(r.messages),
                    "price": float(r.price or 0),
                }
                for r in conn.execute(query)
                if r.messages
            ]

    def batches(self, limit: int, before: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Batches newest first (by their last day, then id), from the daily facts; `before` pages on."""
        f = daily_facts.c
        last_day = func.max(f.day)
        query = (
            select(
                f.batch_id,
                func.min(f.day).label("first_day"),
                last_day.label("last_day"),
                func.sum(f.messages).label("messages"),
                func.sum(case((f.state.in_(ACCEPTED), f.messages), else_=0)).label("accepted"),
                func.sum(case((f.state == "delivered", f.messages), else_=0)).label("delivered"),
                func.sum(f.price).label("price"),
            )
            .where(f.prefix == self.prefix, f.batch_id != "")
            .group_by(f.batch_id)
            .having(func.sum(f.messages) > 0)
            .order_by(last_day.desc(), f.batch_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.having(tuple_(last_day, f.batch_id) < tuple_(*before))
        with self.engine.connect() as conn:
            return [
                {
                    "batch_id": r.batch_id,
                    "first_day": r.first_day,
                    "last_day": r.last_day,
                    "messages": int(r.messages),
                    "accepted": int(r.accepted or 0),
                    "delivered": int(r.delivered or 0),
                    "price": round(float(r.price or 0), 6),
                }
                for r in conn.execute(query)
            ]

    # --- maintenance: retention, redaction, erasure (each call one bounded step) -----------
    def delete_older_than(self, cutoff: float, step: int = MAINTENANCE_STEP) -> int:
        """Delete up to `step` rows created before `cutoff`; the daily facts keep their figures."""
        m = messages.c
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    select(m.job_id)
                    .where(m.prefix == self.prefix, m.created_ts < cutoff)
                    .order_by(m.created_ts)
                    .limit(step)
                ).scalars()
            )
            if ids:
                conn.execute(delete(messages).where(m.prefix == self.prefix, m.job_id.in_(ids)))
            return len(ids)

    def redact_older_than(self, cutoff: float, step: int = MAINTENANCE_STEP) -> int:
        """Redact up to `step` rows created before `cutoff`, from where the last step stopped."""
        m = messages.c
        mark = f"redacted_until:{self.prefix}"
        with self.engine.begin() as conn:
            since = conn.execute(select(archive_meta.c.value).where(archive_meta.c.name == mark)).scalar()
            where = [m.prefix == self.prefix, m.created_ts < cutoff]
            if since is not None:
                where.append(m.created_ts >= float(since))
            rows = list(conn.execute(select(messages).where(*where).order_by(m.created_ts).limit(step)))
            self._redact_rows(conn, [r for r in rows if not r.redacted])
            if rows:
                # The next step starts at the last row's time: rows sharing it are redacted again (a no-op).
                last = str(rows[-1].created_ts if len(rows) == step else cutoff)
                stmt = self._insert(archive_meta).values(name=mark, value=last)
                conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": last}))
            return len(rows)

    def redact_number(self, number: str, step: int = MAINTENANCE_STEP) -> int:
        """Redact up to `step` rows sent to `number`; 0 once none is left."""
        m = messages.c
        with self.engine.begin() as conn:
            rows = list(conn.execute(select(messages).where(m.prefix == self.prefix, m.to == number).limit(step)))
            self._redact_rows(conn, rows)
            return len(rows)

    def _redact_rows(self, conn: Any, rows: Sequence[Any]) -> None:
        m = messages.c
        for r in rows:
            values = redacted_fields(r.to, r.text, r.idempotency_key, r.callback)
            conn.execute(
                update(messages).where(m.prefix == self.prefix, m.job_id == r.job_id).values(**values, redacted=True)
            )
