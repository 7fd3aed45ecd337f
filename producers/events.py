"""The outcome events feed: every state change of a record, read from `{P}:events`.

The ledger's scripts append one entry per state change (`job`, `state`, `prev`, and
`reason`, `batch`, `late` when they apply; the entry id is the time), trimmed with `MAXLEN ~ COSMOS_EVENTS_MAXLEN`.
Entries of other kinds (a `kind` field: `budget` warnings) are yielded only to readers that ask (`kinds=`).
On Redis 7.0 trimming drops entries whether or not a group has acknowledged them: the stream
is a feed, not a queue. A reader that falls behind the bound gets `EventsMissed`, never a gap.

    from producers.events import EventReader, EventsMissed

    reader = EventReader("billing", "billing-1")       # consumer group, this process's name
    while True:
        try:
            for event in reader.read(count=100, block_ms=5000):
                handle(event)                           # at least once: make it idempotent
                reader.ack([event])
        except EventsMissed as missed:
            log(missed)                                 # how many, and where the stream starts now
            reader.skip_missed()                        # resume at the first available event

Names: `Event`, `EventReader`, `EventFeed` (plain reads, no group: the CLI and the console),
`EventsMissed`.

    CosmosSmsError
    └── EventsMissed   a group fell behind the bound: events were trimmed before it read them

Readers only read: nothing here blocks the workers (a blocking read holds only its own
connection) and every call touches at most `count` entries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from config.errors import CosmosSmsError
from config.keys import Keys
from config.redis_client import redis_client
from config.settings import Settings, load_settings
from ledger.record import entry_time
from ledger.scripts import ScriptCalls

MAX_READ_COUNT = 1000
"""Most entries one read returns: no call of ours holds Redis long."""
MAX_BLOCK_MS = 30_000
"""Longest blocking wait of one read (milliseconds); the connection's timeout is above it."""
DEFAULT_CLAIM_IDLE_MS = 60_000
"""Entries another consumer of the group left unacknowledged this long (ms) are taken over."""
CLAIM_EVERY_S = 5.0
"""How often (seconds) a reader looks for idle entries of other consumers."""
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
STATE = "state"
EVENT_KINDS = (STATE, "inbound", "budget")
"""What the stream carries. Readers get `state` events only unless they ask for more (`kinds=`), so a
reader written for state changes never meets another kind."""


class EventsMissed(CosmosSmsError):
    """A reader fell behind the stream's bound: events were trimmed before it read them.

    `.count` estimates how many (None when Redis cannot tell), `.first_available_id` is where
    the stream starts now. `EventReader.skip_missed()` resumes there; records stay readable
    with `get_status` for the retention period, so a consumer can reconcile the gap.
    """

    def __init__(self, group: str, count: int | None, first_available_id: str | None):
        self.group = group
        self.count = count
        self.first_available_id = first_available_id
        how_many = f"about {count}" if count is not None else "an unknown number of"
        super().__init__(
            f"events group {group!r} fell behind the stream's bound (COSMOS_EVENTS_MAXLEN): {how_many} events "
            f"were trimmed before it read them; the stream now starts at {first_available_id}; "
            f"call skip_missed() to resume there"
        )


@dataclass(frozen=True)
class Event:
    """One state change of one record."""

    id: str
    """Stream entry id (`<ms>-<seq>`), increasing."""
    job_id: str
    state: str
    prev: str | None
    ts: float
    """When the change happened (epoch seconds)."""
    reason: str | None = None
    """The dead reason, for `dead`."""
    batch_id: str | None = None
    late: bool = False
    """The provider's word arrived after the job had ended `expired`, `dead` or `cancelled`."""
    kind: str = STATE
    """`state` (a record's state change) or another kind (`inbound`: a message to us; `budget`: a cap's
    warning), see EVENT_KINDS."""
    detail: dict[str, str] = field(default_factory=dict)
    """The fields of an event of another kind (a `budget` event: level, reason, messages, price, cap, day)."""

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str]) -> Event:
        kind = fields.get("kind", STATE)
        if kind != STATE:
            detail = {k: v for k, v in fields.items() if k not in ("kind", "reason")}
            reason = fields.get("reason") or None
            return cls(entry_id, "", "", None, entry_time(entry_id), reason, kind=kind, detail=detail)
        return cls(
            id=entry_id,
            job_id=fields.get("job", ""),
            state=fields.get("state", ""),
            prev=fields.get("prev") or None,
            ts=entry_time(entry_id),
            reason=fields.get("reason") or None,
            batch_id=fields.get("batch") or None,
            late=fields.get("late", "") in ("1", "true"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; `at` is `ts` in ISO 8601 UTC."""
        at = datetime.fromtimestamp(self.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.kind != STATE:
            return {"id": self.id, "kind": self.kind, "ts": self.ts, "at": at, "reason": self.reason, **self.detail}
        return {
            "id": self.id,
            "kind": self.kind,
            "job_id": self.job_id,
            "state": self.state,
            "prev": self.prev,
            "ts": self.ts,
            "at": at,
            "reason": self.reason,
            "batch_id": self.batch_id,
            "late": self.late,
        }


def _client(settings: Settings) -> redis.Redis:
    return redis_client(settings, "cli")  # any REDIS_URL form, Sentinel included


def _wait_for_entries(client: redis.Redis, stream: str, after: str, block_ms: int, count: int = 1) -> Any:
    """XREAD BLOCK for up to `block_ms`, in slices shorter than the client's reply timeout."""
    timeout_s = client.connection_pool.connection_kwargs.get("socket_timeout")
    slice_ms = max(100, int((float(timeout_s) - 1.0) * 1000)) if timeout_s else block_ms
    deadline = time.monotonic() + block_ms / 1000
    while True:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            return None
        reply = client.xread({stream: after}, count=count, block=min(left_ms, slice_ms))
        if reply:
            return reply


def _check_kinds(kinds: Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    chosen = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = sorted(chosen - set(EVENT_KINDS))
    if unknown or not chosen:
        allowed = ", ".join(EVENT_KINDS)
        raise ValueError(f"kinds: must be None (every kind) or some of {allowed}, got {unknown or 'none'}")
    return chosen


def _check_count(count: int) -> int:
    if not isinstance(count, int) or not 1 <= count <= MAX_READ_COUNT:
        raise ValueError(f"count: must be an integer from 1 to {MAX_READ_COUNT}, got {count!r}")
    return count


def _check_block(block_ms: int | None) -> int | None:
    if block_ms is not None and (not isinstance(block_ms, int) or not 0 < block_ms <= MAX_BLOCK_MS):
        raise ValueError(f"block_ms: must be None or an integer from 1 to {MAX_BLOCK_MS}, got {block_ms!r}")
    return block_ms


def _events(entries: Sequence[Any] | None) -> tuple[list[Event], list[str]]:
    """Events of an XRANGE/XREADGROUP entry list, and the ids whose entries were trimmed (no fields)."""
    events, trimmed = [], []
    for entry_id, fields in entries or ():
        if not fields:
            trimmed.append(entry_id)
        else:
            if isinstance(fields, list):
                fields = dict(zip(fields[::2], fields[1::2]))
            events.append(Event.from_entry(entry_id, fields))
    return events, trimmed


class EventReader:
    """Read the events stream as one consumer of a consumer group: acknowledged, resumable.

    Delivery is at least once: an event stays pending for its consumer until `ack`. After a
    crash, the same consumer name re-reads its pending events first; a reader also takes over
    events another consumer of the group left unacknowledged for `claim_idle_ms`.
    `start` is where a new group begins: `"$"` (events from now on) or `"0"` (every event
    still in the stream). An existing group keeps its position.
    """

    def __init__(
        self,
        group: str,
        consumer: str,
        settings: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        start: str = "$",
        claim_idle_ms: int | None = DEFAULT_CLAIM_IDLE_MS,
        kinds: Iterable[str] | None = (STATE,),
    ) -> None:
        for name, value in (("group", group), ("consumer", consumer)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise ValueError(f"{name}: must be 1-200 characters of letters, digits and _.:@-, got {value!r}")
        if start not in ("$", "0"):
            raise ValueError(f"start: must be '$' (new events) or '0' (every event kept), got {start!r}")
        if claim_idle_ms is not None and (not isinstance(claim_idle_ms, int) or claim_idle_ms < 1000):
            raise ValueError(f"claim_idle_ms: must be None or at least 1000, got {claim_idle_ms!r}")
        self.kinds = _check_kinds(kinds)
        self.settings = settings or load_settings()
        self.redis = client or _client(self.settings)
        self.stream = Keys(self.settings.redis_prefix).events
        self.group, self.consumer, self.start, self.claim_idle_ms = group, consumer, start, claim_idle_ms
        self._call = ScriptCalls(self.redis, self.settings)
        self._pending_cursor: str | None = "0"  # own unacknowledged events first, after a restart
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the group if it does not exist yet (at `start`); harmless if it does."""
        self._call("events_group", group=self.group, start=self.start)
        self._group_ready = True

    def read(self, count: int = 100, block_ms: int | None = None) -> list[Event]:
        """The next events for this consumer: its own pending ones, idle ones of others, then new ones.

        Waits up to `block_ms` for new events when there are none (None: no wait). Raises
        `EventsMissed` when the group fell behind the stream's bound.
        """
        _check_count(count)
        _check_block(block_ms)
        if not self._group_ready:
            self.ensure_group()
        events = self._read_pending(count) or self._claim_idle(count) or self._read_new_events(count, block_ms)
        if self.kinds is None:
            return events
        # Events of kinds this reader did not ask for are acknowledged unseen: they never stay pending.
        unwanted = [event for event in events if event.kind not in self.kinds]
        if unwanted:
            self.ack(unwanted)
        return [event for event in events if event.kind in self.kinds]

    def ack(self, events: Sequence[Event]) -> int:
        """Acknowledge handled events; returns how many were still pending."""
        ids = [event.id for event in events]
        acked = 0
        for start in range(0, len(ids), MAX_READ_COUNT):
            acked += self.redis.xack(self.stream, self.group, *ids[start : start + MAX_READ_COUNT])
        return acked

    def follow(self, count: int = 100, block_ms: int = 5000) -> Iterator[Event]:
        """Iterate events forever (blocking between them); `ack` each one once handled."""
        while True:
            yield from self.read(count, block_ms)

    def skip_missed(self) -> bool:
        """After `EventsMissed`: move the group to the first available event; returns whether it moved."""
        return bool(self._call("events_skip", group=self.group))

    def pending_count(self) -> int:
        """Events delivered to this group and not acknowledged yet (all its consumers)."""
        try:
            return int(self.redis.xpending(self.stream, self.group)["pending"])
        except redis.ResponseError:
            return 0

    def _read_pending(self, count: int) -> list[Event]:
        if self._pending_cursor is None:
            return []
        reply: Any = self.redis.xreadgroup(self.group, self.consumer, {self.stream: self._pending_cursor}, count=count)
        entries = reply[0][1] if reply else []
        if not entries:
            self._pending_cursor = None
            return []
        events, trimmed = _events(entries)
        if trimmed:
            # Delivered to us before a crash, never acknowledged, and trimmed since: lost for us.
            # Acknowledged so they are said once; the cursor stays, the next read returns the rest.
            self.redis.xack(self.stream, self.group, *trimmed)
            raise EventsMissed(self.group, len(trimmed), self._first_id())
        self._pending_cursor = entries[-1][0]
        return events

    def _claim_idle(self, count: int) -> list[Event]:
        if self.claim_idle_ms is None or time.monotonic() < self._next_claim:
            return []
        reply = self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=self._claim_cursor, count=count
        )
        self._claim_cursor = reply[0]
        if self._claim_cursor == "0-0":
            # Scanned the whole group: rest a while (less than the idle time, so none waits long).
            self._next_claim = time.monotonic() + min(CLAIM_EVERY_S, self.claim_idle_ms / 2000)
        events, trimmed = _events(reply[1])
        deleted = list(reply[2]) if len(reply) > 2 else []
        if deleted or trimmed:
            # Redis drops trimmed entries from the pending list as it claims them; say so, once.
            self._claim_cursor = "0-0"
            if events:
                self._pending_cursor = "0"  # the claimed ones are ours now: re-read them next
            raise EventsMissed(self.group, len(deleted) + len(trimmed), self._first_id())
        return events

    def _read_new_events(self, count: int, block_ms: int | None) -> list[Event]:
        events, last_id = self._run_read_new(count)
        if events or block_ms is None:
            return events
        # Wait for anything after the stream's end, then read again under the same check.
        _wait_for_entries(self.redis, self.stream, last_id or "0-0", block_ms)
        return self._run_read_new(count)[0]

    def _run_read_new(self, count: int) -> tuple[list[Event], str | None]:
        reply = self._call("events_read", group=self.group, consumer=self.consumer, count=count)
        if reply[0] == "nogroup":
            self.ensure_group()
            reply = self._call("events_read", group=self.group, consumer=self.consumer, count=count)
        if reply[0] == "missed":
            estimate = int(reply[1])
            raise EventsMissed(self.group, estimate if estimate > 0 else None, reply[2])
        if reply[0] != "ok":
            return [], None
        entries = reply[2][0][1] if reply[2] else []
        return _events(entries)[0], reply[1]

    def _first_id(self) -> str | None:
        first: Any = self.redis.xrange(self.stream, count=1)
        return str(first[0][0]) if first else None


class EventFeed:
    """Plain reads of the events stream, without a group: what the CLI and the console show."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        kinds: Iterable[str] | None = (STATE,),
    ) -> None:
        self.kinds = _check_kinds(kinds)
        self.settings = settings or load_settings()
        self.redis = client or _client(self.settings)
        self.stream = Keys(self.settings.redis_prefix).events

    def latest(self, count: int = 50) -> list[Event]:
        """The last `count` events, oldest first."""
        entries: Any = self.redis.xrevrange(self.stream, count=_check_count(count))
        return self._wanted(_events(list(reversed(entries)))[0])

    def after(self, event_id: str = "0-0", count: int = 100) -> list[Event]:
        """Up to `count` events after `event_id` (exclusive), oldest first: a page."""
        while True:
            entries: Any = self.redis.xrange(self.stream, min=f"({event_id}", count=_check_count(count))
            wanted = self._wanted(_events(entries)[0])
            if wanted or len(entries) < count:
                return wanted
            event_id = entries[-1][0]  # a whole page of other kinds: the next one

    def follow(self, after: str = "$", block_ms: int = 5000, count: int = 100) -> Iterator[Event]:
        """Iterate events after `after` (`$`: from now on) forever, waiting for new ones."""
        _check_block(block_ms)
        last = after
        if last == "$":
            newest: Any = self.redis.xrevrange(self.stream, count=1)
            last = newest[0][0] if newest else "0-0"
        while True:
            reply: Any = _wait_for_entries(self.redis, self.stream, last, block_ms, _check_count(count))
            for event in _events(reply[0][1] if reply else [])[0]:
                last = event.id
                if self.kinds is None or event.kind in self.kinds:
                    yield event

    def _wanted(self, events: list[Event]) -> list[Event]:
        return events if self.kinds is None else [event for event in events if event.kind in self.kinds]

    def info(self) -> dict[str, Any]:
        """Length, bound, first and last ids, and each group's position and lag."""
        try:
            stream: Any = self.redis.xinfo_stream(self.stream)
            groups: Any = self.redis.xinfo_groups(self.stream)
        except redis.ResponseError:  # no stream yet
            return {
                "length": 0,
                "maxlen": self.settings.events_maxlen,
                "first_id": None,
                "last_id": None,
                "entries_added": 0,
                "groups": [],
            }
        first, last = stream.get("first-entry"), stream.get("last-entry")
        return {
            "length": stream["length"],
            "maxlen": self.settings.events_maxlen,
            "first_id": first[0] if first else None,
            "last_id": last[0] if last else None,
            "entries_added": stream.get("entries-added"),
            "groups": [
                {
                    "name": g["name"],
                    "consumers": g["consumers"],
                    "pending": g["pending"],
                    "last_delivered_id": g["last-delivered-id"],
                    "lag": g.get("lag"),
                }
                for g in groups
            ],
        }
