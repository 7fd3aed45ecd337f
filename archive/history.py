"""History: live records (Redis) and archived rows together, newest first, with a keyset cursor.

A live record wins over its archived row (it may have changed since). The live side reads one
index (a number's, or every record's by creation time) in a bounded window; when that window is cut
short, the page ends where it was cut, so the next page loses nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from archive.rows import record_from_row
from archive.store import Archive, HistoryQuery
from ledger.record import to_record
from ledger.store import Ledger

LIVE_SCAN = 5000
"""Index entries one page reads from Redis at most, whatever the filters."""
_CURSOR = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?):(.+)$")


class BadCursor(ValueError):
    pass


def parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    match = _CURSOR.match(cursor)
    if not match:
        raise BadCursor("--after: not a cursor printed by a previous page")
    return float(match[1]), match[2]


def cursor_of(key: tuple[float, str]) -> str:
    return f"{key[0]!r}:{key[1]}"


def _live(ledger: Ledger, q: HistoryQuery, limit: int) -> tuple[list[tuple[tuple[float, str], dict[str, Any]]], Any]:
    """Live matches (key, record), and the oldest key read when the index window was cut short."""
    k = ledger.keys
    if q.message_id:
        job = ledger.redis.get(k.message_id(q.message_id))
        ids = [str(job)] if job else []
        cut = None
    else:
        index = k.by_number(q.to) if q.to else k.created
        high = min(q.after[0] if q.after else float("inf"), q.until if q.until is not None else float("inf"))
        low = q.since if q.since is not None else float("-inf")
        want = limit + 1 if not (q.batch or q.state) else LIVE_SCAN
        entries: list[tuple[str, float]] = ledger.redis.zrevrangebyscore(  # type: ignore[assignment]
            index, high, low, start=0, num=want, withscores=True
        )
        ids = [str(m) for m, _ in entries]
        cut = (float(entries[-1][1]), str(entries[-1][0])) if len(entries) == want else None
    out = []
    for job_id, raw in zip(ids, ledger.raw_many(ids)):
        if not raw:
            continue
        key = (float(raw.get("created_ts") or 0), job_id)
        record = to_record(job_id, raw)
        assert record is not None
        if _matches(record, key, q):
            out.append((key, record))
    return out, cut


def _matches(record: dict[str, Any], key: tuple[float, str], q: HistoryQuery) -> bool:
    if q.to and record["to"] != q.to:
        return False
    if q.message_id and record["message_id"] != q.message_id:
        return False
    if q.batch and record["batch_id"] != q.batch:
        return False
    if q.state and record["state"] != q.state:
        return False
    if q.since is not None and key[0] < q.since:
        return False
    if q.until is not None and key[0] >= q.until:
        return False
    return not (q.after is not None and key >= q.after)


def history(
    ledger: Ledger, archive: Archive | None, q: HistoryQuery, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` records newest first, and the cursor of the next page (None at the end)."""
    live, cut = _live(ledger, q, limit)
    merged: dict[str, tuple[tuple[float, str], dict[str, Any]]] = {}
    archived_more = False
    if archive is not None:
        rows = archive.history(replace(q), limit + 1)
        archived_more = len(rows) > limit
        for row in rows:
            merged[row.job_id] = ((row.created_ts, row.job_id), record_from_row(row))
    for key, record in live:
        merged[key[1]] = (key, record)  # the live record is the newest word
    ordered = sorted(merged.values(), key=lambda kr: kr[0], reverse=True)
    if cut is not None:
        ordered = [kr for kr in ordered if kr[0] >= cut]
    page = ordered[:limit]
    more = len(ordered) > limit or cut is not None or archived_more
    if not page:
        return [], cursor_of(cut) if cut is not None and cut != q.after else None
    return [r for _, r in page], cursor_of(page[-1][0]) if more else None
