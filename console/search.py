"""Message search over millions of records: one index drives each query, other filters scan a bounded page.

Direct lookups (job id, COSMOS message_id, idempotency key) read one key. A number walks
`idx:to:<number>`, a batch walks its members by index, `state=dead` / `state=held` walk their
sets, and everything else walks `idx:created`, newest first. Per request at most SCAN_LIMIT
index entries are read; the filters the index does not answer are checked on those entries
only, and the cursor says where the next page starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import redis

from config.keys import Keys
from config.settings import Settings
from ledger.record import STATES
from ledger.schema import batch_job_id, row_args
from ledger.scripts import ScriptCalls

PAGE_SIZE = 50
SCAN_LIMIT = 1000
"""Index entries one page request reads at most, whatever the filters."""
NUMBER = re.compile(r"^0[0-9]{14}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@|-]{1,200}$")
_CURSOR = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?):([0-9]+)$")


class SearchError(ValueError):
    """A malformed search; the message names the field."""


@dataclass(frozen=True)
class Query:
    job_id: str = ""
    message_id: str = ""
    number: str = ""
    idem: str = ""
    batch: str = ""
    state: str = ""
    reason: str = ""
    since: float | None = None
    until: float | None = None
    cursor: str = ""
    scheduled: bool = False
    """Only queued jobs with a send_at: waiting for it, or released and not yet taken."""

    @property
    def driver(self) -> str:
        """Which index answers this query."""
        for name in ("job_id", "message_id", "idem", "number", "batch"):
            if getattr(self, name):
                return name
        if self.state in ("dead", "held") or self.reason:
            return "dead" if self.state != "held" else "held"
        return "created"


@dataclass
class Page:
    job_ids: list[str] = field(default_factory=list)
    next_cursor: str | None = None
    scanned: int = 0


def parse_time(name: str, value: str) -> float | None:
    """An ISO date/time (a browser's datetime-local too), read as UTC; SearchError naming the field."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"{name}: not a date and time (use YYYY-MM-DDTHH:MM, UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_query(params: dict[str, str]) -> Query:
    """A Query from the search form; SearchError naming the first bad field."""
    values = {
        k: (params.get(k) or "").strip()
        for k in ("job_id", "message_id", "number", "idem", "batch", "state", "reason", "cursor")
    }
    for name in ("job_id", "message_id", "idem", "batch", "reason"):
        if values[name] and not _TOKEN.match(values[name]):
            raise SearchError(f"{name}: unexpected characters (letters, digits and _ . : @ | - only, up to 200)")
    if values["number"] and not NUMBER.match(values["number"]):
        raise SearchError("number: must be 0 followed by 14 digits")
    if values["state"] and values["state"] not in STATES:
        raise SearchError(f"state: unknown state (one of {', '.join(STATES)})")
    if values["reason"] and values["state"] not in ("", "dead"):
        raise SearchError("reason: only dead messages have a dead reason")
    if values["cursor"] and not _CURSOR.match(values["cursor"]):
        raise SearchError("cursor: malformed (start the search again)")
    since, until = parse_time("since", params.get("since", "")), parse_time("until", params.get("until", ""))
    if since is not None and until is not None and since > until:
        raise SearchError("since: later than until")
    scheduled = (params.get("scheduled") or "").strip()
    if scheduled not in ("", "1", "on"):
        raise SearchError("scheduled: 1 or nothing")
    if scheduled and values["state"] not in ("", "queued"):
        raise SearchError("scheduled: scheduled messages are queued")
    return Query(**values, since=since, until=until, scheduled=bool(scheduled))


class Searcher:
    """Runs Queries against one prefix."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.keys = Keys(settings.redis_prefix)
        self._call = ScriptCalls(client, settings)

    def run(self, q: Query) -> Page:
        driver = q.driver
        if driver in ("job_id", "message_id", "idem"):
            return self._direct(q, driver)
        if driver == "batch":
            return self._batch(q)
        zset = {
            "number": self.keys.by_number(q.number),
            "dead": self.keys.dead,
            "held": self.keys.held,
            "created": self.keys.created,
        }[driver]
        return self._walk(q, zset)

    def _direct(self, q: Query, driver: str) -> Page:
        job_id: str | None
        if driver == "job_id":
            job_id = q.job_id
        elif driver == "message_id":
            job_id = cast(str | None, self.redis.get(self.keys.message_id(q.message_id)))  # decode_responses
        else:
            owner = cast(str | None, self.redis.get(self.keys.idempotency(q.idem)))  # decode_responses
            job_id = owner.split("|", 1)[0] if owner else None
        if not job_id:
            return Page()
        return Page(self._matching(q, [job_id]), None, 1)

    def _walk(self, q: Query, zset: str) -> Page:
        """Newest first from the cursor (score, how many already seen at that score)."""
        top = f"{q.until}" if q.until is not None else "+inf"
        skip = 0
        if q.cursor:
            score, seen = q.cursor.split(":")
            top, skip = score, int(seen)
        bottom = f"{q.since}" if q.since is not None else "-inf"
        # The index answers the query alone: read one page. Otherwise scan at most SCAN_LIMIT entries.
        limit = SCAN_LIMIT if self._needs_filter(q, zset) else PAGE_SIZE
        # decode_responses: members come back as str, and withscores pairs each with its float score.
        rows = cast(
            list[tuple[str, float]],
            self.redis.zrange(zset, top, bottom, desc=True, byscore=True, offset=skip, num=limit, withscores=True),
        )
        ids = [job_id for job_id, _ in rows]
        matches = self._matching(q, ids)
        if len(matches) > PAGE_SIZE:
            last = matches[PAGE_SIZE - 1]
            used = ids.index(last) + 1
            matches = matches[:PAGE_SIZE]
        else:
            used = len(rows)
        next_cursor = None
        if len(rows) == limit or used < len(rows):
            last_score = rows[used - 1][1]
            same = sum(1 for _, s in rows[:used] if s == last_score)
            if q.cursor and float(q.cursor.split(":")[0]) == last_score:
                same += skip
            next_cursor = f"{_score(last_score)}:{same}"
        return Page(matches, next_cursor, used)

    def _needs_filter(self, q: Query, zset: str) -> bool:
        """Whether a filter remains that the walked index does not answer by itself."""
        if q.reason or q.batch or q.scheduled:
            return True
        if q.state:
            walked = {self.keys.dead: "dead", self.keys.held: "held"}.get(zset)
            return q.state != walked
        return False

    def _batch(self, q: Query) -> Page:
        total = int(self.redis.hget(self.keys.batch(q.batch), "total") or 0) if self._is_hash(q.batch) else 0
        start = int(q.cursor.split(":")[1]) if q.cursor else 0
        filtered = bool(q.state or q.reason or q.scheduled or q.since is not None or q.until is not None)
        end = min(total, start + (SCAN_LIMIT if filtered else PAGE_SIZE))
        ids = [batch_job_id(q.batch, i) for i in range(start, end)]
        matches = self._matching(q, ids)
        if len(matches) > PAGE_SIZE:
            end = start + ids.index(matches[PAGE_SIZE - 1]) + 1
            matches = matches[:PAGE_SIZE]
        return Page(matches, f"0:{end}" if end < total else None, end - start)

    def _is_hash(self, batch_id: str) -> bool:
        return self.redis.type(self.keys.batch(batch_id)) == "hash"

    def _matching(self, q: Query, ids: list[str]) -> list[str]:
        """The ids whose records exist and pass every filter, in order: one read-only script call
        over at most SCAN_LIMIT records (a pipeline of 1,000 HMGETs costs more in the client than in Redis)."""
        if not ids:
            return []
        hits = self._call(
            "search_filter",
            row_args("search_filter", "jobs", ({"job": job_id} for job_id in ids)),
            state=q.state,
            reason=q.reason,
            number=q.number,
            batch=q.batch,
            since="" if q.since is None else repr(q.since),
            until_ts="" if q.until is None else repr(q.until),
            scheduled="1" if q.scheduled else "",
            jobs=len(ids),
        )
        return [ids[int(i) - 1] for i in hits]


def _score(value: float) -> str:
    return repr(float(value))
