"""Forward intents in Redis: the outcomes we owe to applications' own callbacks.

The ledger's script that writes a final state also writes the intent, `{P}:fwd:<fwd_id>`
(hash: `job`, `url`, `payload`, `webhook_id`, `attempts`, `created_ts`) and
`ZADD {P}:forwards:due <now> <fwd_id>`. Workers drain the due set through `Forwards`:

- `claim` takes due forwards in bounded steps and pushes each one `grace` seconds ahead, so
  the claim of a worker that dies mid-POST comes due again for another worker;
- `complete` forgets a delivered forward; `reschedule` sets its next try (with the attempt
  counted, or not when a breaker held it back) and gives it up into `{P}:forwards:failed`
  once its retry window (`COSMOS_FORWARD_MAX_AGE_S`) has passed;
- `failed_page` lists given-up forwards (paged), `retry` moves them back to due with a new
  window. Given-up forwards are kept for `COSMOS_RETENTION_S`, then pruned.

Claim, reschedule and retry are ledger scripts (`ledger/lua/forward_*.lua`) on the ledger's clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from config.keys import Keys
from config.settings import Settings
from ledger.clock import ledger_now
from ledger.schema import reply_rows, row_args
from ledger.scripts import ScriptCalls

MAX_STEP = 500
"""Most forwards one script call claims, retries or prunes: no call holds Redis long."""
PRUNE_STEP = 100
"""Most expired given-up forwards one claim removes on the side."""


@dataclass(frozen=True)
class Forward:
    """One forward intent: what to POST where, and how it went so far."""

    fwd_id: str
    job_id: str
    url: str
    payload: str
    """The JSON body, exactly as it is signed and sent."""
    webhook_id: str
    """Standard Webhooks `webhook-id`: the same on every retry of this forward."""
    attempts: int
    created_ts: float
    last_error: str | None = None
    failed_ts: float | None = None

    @classmethod
    def from_fields(cls, fwd_id: str, fields: dict[str, str]) -> Forward:
        failed = fields.get("failed_ts")
        return cls(
            fwd_id=fwd_id,
            job_id=fields.get("job", ""),
            url=fields.get("url", ""),
            payload=fields.get("payload", "{}"),
            webhook_id=fields.get("webhook_id") or fwd_id,
            attempts=int(fields.get("attempts") or 0),
            created_ts=float(fields.get("created_ts") or 0),
            last_error=fields.get("last_error") or None,
            failed_ts=float(failed) if failed else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the CLI (the payload parsed)."""
        try:
            payload = json.loads(self.payload)
        except ValueError:
            payload = self.payload
        return {
            "fwd_id": self.fwd_id,
            "job_id": self.job_id,
            "url": self.url,
            "webhook_id": self.webhook_id,
            "attempts": self.attempts,
            "created_ts": self.created_ts,
            "last_error": self.last_error,
            "failed_ts": self.failed_ts,
            "payload": payload,
        }


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


class Forwards:
    """The due and failed sets of forward intents for one prefix."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self._call = ScriptCalls(client, settings)

    def add(self, job_id: str, url: str, payload: dict[str, Any]) -> Forward:
        """Write an intent as the ledger's script does (tools and tests; the ledger writes its own in Lua)."""
        now = ledger_now(self.redis, self.settings)
        fwd_id = uuid.uuid4().hex
        fields: dict[str, str | float] = {
            "job": job_id,
            "url": url,
            "payload": json.dumps(payload, separators=(",", ":")),
            "webhook_id": f"msg_{fwd_id}",
            "attempts": 0,
            "created_ts": now,
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.forward(fwd_id), mapping=fields)  # type: ignore[arg-type]
        pipe.zadd(self.keys.forwards_due, {fwd_id: now})
        pipe.execute()
        return Forward.from_fields(fwd_id, {k: str(v) for k, v in fields.items()})

    def claim(self, limit: int = MAX_STEP, held: Sequence[tuple[str, float]] = ()) -> list[Forward]:
        """Take up to `limit` due forwards (at most MAX_STEP), invisible to others for the claim grace; first
        push back `held` (fwd_id, delay_s): claimed ones held back without a request, no attempt counted."""
        held = list(held)[:MAX_STEP]
        rows = row_args("forward_claim", "held", ({"fwd_id": f, "delay_s": max(0.0, d)} for f, d in held))
        reply = self._call(
            "forward_claim",
            rows,
            limit=max(0, min(int(limit), MAX_STEP)),
            claim_grace_s=self.settings.forward_claim_grace_s,
            prune_limit=PRUNE_STEP,
            held=len(held),
        )
        return [Forward.from_fields(row["fwd_id"], _pairs(row["fields"])) for row in reply_rows("forward_claim", reply)]

    def complete(self, fwd_id: str) -> None:
        """Forget a delivered forward."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.forward(fwd_id))
        pipe.zrem(self.keys.forwards_due, fwd_id)
        pipe.execute()

    def reschedule(self, fwd_id: str, delay_s: float, error: str = "", attempted: bool = True) -> str:
        """Next try in `delay_s`; 'failed' once the retry window has passed ('gone' if it no longer exists)."""
        reply = self._call(
            "forward_reschedule",
            fwd_id=fwd_id,
            delay_s=max(0.0, delay_s),
            error=error[:500],
            attempted="1" if attempted else "0",
            max_age_s=self.settings.forward_max_age_s,
        )
        return str(reply)

    def give_up(self, fwd_id: str, error: str) -> str:
        """List a forward with the failed ones at once (its destination will never be reached)."""
        reply = self._call(
            "forward_reschedule", fwd_id=fwd_id, delay_s=0.0, error=error[:500], attempted="1", max_age_s=0.0
        )
        return str(reply)

    def due_count(self) -> int:
        """Forwards waiting for a (next) POST, claimed ones included."""
        return self.redis.zcard(self.keys.forwards_due)

    def failed_count(self) -> int:
        return self.redis.zcard(self.keys.forwards_failed)

    def get(self, fwd_id: str) -> Forward | None:
        fields: dict[str, str] = self.redis.hgetall(self.keys.forward(fwd_id))  # type: ignore[assignment]
        return Forward.from_fields(fwd_id, fields) if fields else None

    def failed_page(self, offset: int = 0, count: int = 100) -> list[Forward]:
        """Given-up forwards, oldest first: `count` (at most MAX_STEP) from `offset`."""
        count = max(1, min(int(count), MAX_STEP))
        ids: list[str] = self.redis.zrange(  # type: ignore[assignment]
            self.keys.forwards_failed, offset, offset + count - 1
        )
        pipe = self.redis.pipeline(transaction=False)
        for fwd_id in ids:
            pipe.hgetall(self.keys.forward(fwd_id))
        return [Forward.from_fields(fwd_id, fields) for fwd_id, fields in zip(ids, pipe.execute()) if fields]

    def iter_failed(self, page: int = MAX_STEP) -> Iterator[Forward]:
        """Every given-up forward, a page at a time."""
        offset = 0
        while True:
            batch = self.failed_page(offset, page)
            yield from batch
            if not batch:
                return
            offset += page

    def retry(self, fwd_ids: Sequence[str]) -> int:
        """Move given-up forwards back to due with a new retry window; returns how many moved."""
        moved = 0
        for start in range(0, len(fwd_ids), MAX_STEP):
            chunk = fwd_ids[start : start + MAX_STEP]
            rows = row_args("forward_retry", "ids", ({"fwd_id": fwd_id} for fwd_id in chunk))
            moved += int(self._call("forward_retry", rows, ids=len(chunk)))
        return moved

    def retry_all(self) -> int:
        """Retry every forward given up before now, a step at a time."""
        cutoff = ledger_now(self.redis, self.settings)
        moved = 0
        while ids := self._failed_before(cutoff):
            moved += self.retry(ids)
        return moved

    def _failed_before(self, cutoff: float) -> list[str]:
        return self.redis.zrange(  # type: ignore[return-value]
            self.keys.forwards_failed, "-inf", cutoff, byscore=True, offset=0, num=MAX_STEP
        )
