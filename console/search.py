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
from config.numbers import NUMBER
from config.settings import Settings
from ledger.record import STATES
from ledger.schema import batch_job_id, row_args
from ledger.scripts import ScriptCalls

PAGE_SIZE = 50
SCAN_LIMIT = 1000
"""Index entries one page request reads at most, whatever the filters."""
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@|-]{1,200}$")
_CURSOR = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?):([A-Za-z0-9_-]{1,100})$")
"""score:member of the last entry seen (a batch: 0:index of the next member)."""


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
    values["number"] = re.sub(r"[\s+]", "", values["number"])  # as people write it: "+0333 3444 5566 770"
    if values["number"] and not NUMBER.fullmatch(values["number"]):
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
        """Newest first from the cursor: the last entry seen (its score and member), never an offset,
        so Redis finds the next page in O(log N) however many entries share a score."""
        # The index answers the query alone: read one page. Otherwise scan at most SCAN_LIMIT entries.
        limit = SCAN_LIMIT if self._needs_filter(q, zset) else PAGE_SIZE
        rows, full = self._after_cursor(q, zset, limit)
        ids = [job_id for job_id, _ in rows]
        matches = self._matching(q, ids)
        if len(matches) > PAGE_SIZE:
            last = matches[PAGE_SIZE - 1]
            used = ids.index(last) + 1
            matches = matches[:PAGE_SIZE]
        else:
            used = len(rows)
        next_cursor = None
        if (full or used < len(rows)) and used:
            member, score = rows[used - 1]
            next_cursor = f"{_score(score)}:{member}"
        return Page(matches, next_cursor, used)

    def _after_cursor(self, q: Query, zset: str, limit: int) -> tuple[list[tuple[str, float]], bool]:
        """Up to `limit` (member, score) rows after the cursor within the time range, newest first, and
        whether the read was full (more may follow)."""
        bottom = f"{q.since}" if q.since is not None else "-inf"
        rows: list[tuple[str, float]]
        if not q.cursor:
            top = f"{q.until}" if q.until is not None else "+inf"
            # decode_responses: members come back as str, and withscores pairs each with its float score.
            rows = cast(
                list,
                self.redis.zrange(zset, top, bottom, desc=True, byscore=True, offset=0, num=limit, withscores=True),
            )
            return rows, len(rows) == limit
        score, member = q.cursor.split(":", 1)
        rank = cast(int | None, self.redis.zrevrank(zset, member))
        if rank is not None:
            rows = cast(list, self.redis.zrange(zset, rank + 1, rank + limit, desc=True, withscores=True))
            full = len(rows) == limit
        else:
            # The entry left the index meanwhile: from its score, past the members at that score not after it.
            raw = cast(
                list,
                self.redis.zrange(zset, score, bottom, desc=True, byscore=True, offset=0, num=limit, withscores=True),
            )
            rows = [(m, s) for m, s in raw if not (s == float(score) and m >= member)]
            full = len(raw) == limit
        if q.since is not None and rows and rows[-1][1] < q.since:
            rows, full = [(m, s) for m, s in rows if s >= q.since], False
        return rows, full

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
