"""The demo's batch: plain messages plus every path a message can take, sent and followed to the end."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger.record import FINAL_STATES
from ledger.stats import stats
from sandbox.faults import MAGIC_NUMBERS

if TYPE_CHECKING:  # `cosmos-sms` imports this module for MIN_COUNT: it must not pay for Celery
    from demo.pipeline import Pipeline

SENDER = "cosmos-demo"
TRANSIENT_SCRIPT = ("internal_error", "timeout", "ok")
"""Two transient faults, then acceptance: retried within one burst of attempts."""
MAGIC = {verb: number for number, verb in MAGIC_NUMBERS.items()}
NOT_DELIVERED_NUMBER = "099900000000007"

SPECIAL_COUNTS = {
    "single": 5,
    "scheduled": 3,
    "transient": 3,
    "failed": 2,
    "spam": 2,
    "blacklist": 1,
    "not_delivered": 3,
}
"""Messages per path besides the plain bulk ones; `suppressed` adds one more, sent last."""
MIN_COUNT = sum(SPECIAL_COUNTS.values()) + 2
"""Every path once plus one suppressed and at least one plain bulk message."""
POLL_INTERVAL_S = 0.1
SCHEDULE_AHEAD_S = 3.0
"""The `scheduled` messages are sent with a send_at this far ahead: recorded at once, sent no earlier."""
ACCOUNT_FAULT_MAX_S = 10.0
"""As sending starts the sandbox refuses our account (401 unauthorized, COSMOS's answer to wrong
credentials) until the ledger shows sending paused for it, at most this long. Sending then resumes
by itself after a probe is accepted; no message is dead-lettered."""


@dataclass(frozen=True)
class Planned:
    """One message of the batch and the path it is meant to take."""

    kind: str  # plain | single | scheduled | transient | failed | spam | blacklist | suppressed | not_delivered
    to: str

    def as_message(self, index: int, count: int) -> dict:
        return {"to": self.to, "sender": SENDER, "text": f"Demo {index + 1}/{count}: {self.kind}"}


def plan(count: int, rng: random.Random) -> list[Planned]:
    """`count` messages; the suppressed one is last because it must wait for the blacklisted one."""
    numbers = {
        "failed": MAGIC["failed"],
        "spam": MAGIC["spam"],
        "blacklist": MAGIC["blacklist"],
        "not_delivered": NOT_DELIVERED_NUMBER,
    }
    batch = [
        Planned(kind, numbers.get(kind) or _random_number(rng)) for kind, n in SPECIAL_COUNTS.items() for _ in range(n)
    ]
    batch += [Planned("plain", _random_number(rng)) for _ in range(count - len(batch) - 1)]
    rng.shuffle(batch)
    return batch + [Planned("suppressed", MAGIC["blacklist"])]


def _random_number(rng: random.Random) -> str:
    # "03..." never collides with the sandbox's magic "0999..." numbers.
    return "03" + "".join(rng.choice("0123456789") for _ in range(13))


class Scenario:
    """Sends the batch through the producer API and follows every job to a final state."""

    def __init__(self, pipeline: Pipeline, batch: list[Planned]):
        self.pipeline = pipeline
        self.batch = batch
        self.job_ids: list[str] = []
        self.started = 0.0
        self.finished = 0.0
        self._held_back = batch[-1]
        self._blacklisted_job = ""
        self._refusing = False
        self._paused_seen = False
        self._send_at = 0.0

    @property
    def count(self) -> int:
        return len(self.batch)

    def is_final(self, state: str | None) -> bool:
        # Without a receiver no receipt can arrive, so `sent` is as far as a job goes.
        return state in FINAL_STATES

    def send(self) -> None:
        """Script the transient faults, then send: a few with send_sms, the rest in one send_bulk."""
        producer = self.pipeline.producer
        for planned in self.batch:
            if planned.kind == "transient":
                self.pipeline.sandbox.script(planned.to, *TRANSIENT_SCRIPT)
        self.pipeline.sandbox.unauthorized(ACCOUNT_FAULT_MAX_S)
        self._refusing = True
        self.started = time.monotonic()
        first_wave = list(enumerate(self.batch[:-1]))
        singles = [(i, p) for i, p in first_wave if p.kind in ("single", "scheduled")]
        bulk = [(i, p) for i, p in first_wave if p.kind not in ("single", "scheduled")]
        self._send_at = producer.ledger.now() + SCHEDULE_AHEAD_S
        send_at = datetime.fromtimestamp(self._send_at, UTC)
        for index, planned in singles:
            when = send_at if planned.kind == "scheduled" else None
            self.job_ids.append(producer.send_sms(**planned.as_message(index, self.count), send_at=when))
        self.job_ids += producer.send_bulk([p.as_message(i, self.count) for i, p in bulk])
        # send_sms ids first, then send_bulk's in its order: the same order as `singles + bulk`.
        sent_in_order = [p for _, p in singles] + [p for _, p in bulk]
        self._blacklisted_job = next(j for j, p in zip(self.job_ids, sent_in_order) if p.kind == "blacklist")

    def follow(self, deadline_s: float, on_progress: Callable[[int], None]) -> bool:
        """Poll until every job is final or the deadline passes; returns whether all are final."""
        deadline = self.started + deadline_s
        while True:
            self.pipeline.check_alive()
            self._end_account_fault()
            states = self.pipeline.producer.ledger.states(self.job_ids)
            self._release_held_back(states)
            done = sum(1 for state in states if self.is_final(state))
            on_progress(done)
            if done == self.count:
                self.finished = time.monotonic()
                return True
            if time.monotonic() > deadline:
                self.finished = time.monotonic()
                return False
            time.sleep(POLL_INTERVAL_S)

    def _end_account_fault(self) -> None:
        """Let the sandbox take our account again once the ledger shows sending paused for it."""
        if not self._refusing:
            return
        paused = stats(self.pipeline.producer.ledger).get("paused")
        self._paused_seen = bool(paused and paused.get("kind") == "account")
        if self._paused_seen or time.monotonic() - self.started > ACCOUNT_FAULT_MAX_S:
            self.pipeline.sandbox.unauthorized(0)
            self._refusing = False

    def _release_held_back(self, states: list[str | None]) -> None:
        """Send the second message to the blacklisted number once the first is dead (so suppressed)."""
        if len(self.job_ids) == self.count:
            return
        if states[self.job_ids.index(self._blacklisted_job)] == "dead":
            planned = self._held_back
            self.job_ids.append(self.pipeline.producer.send_sms(**planned.as_message(self.count - 1, self.count)))

    def account_pause(self) -> dict:
        """What the unauthorized window did: 401 answers counted, probes made, nothing dead for it."""
        figures = stats(self.pipeline.producer.ledger)
        return {
            "paused_seen": self._paused_seen,
            "unauthorized_answers": figures["unauthorized"],
            "probes": figures.get("probes", 0),
        }

    def scheduled(self) -> dict:
        """The scheduled messages: how many, their send_at, whether any went early, the latest one's delay."""
        records = self.pipeline.producer.ledger.get_many(self.job_ids)
        sent = [
            datetime.fromisoformat(r["sent_at"]).timestamp() - self._send_at
            for r in records
            if r is not None and r["send_at"] and r["sent_at"]
        ]
        return {
            "count": sum(1 for p in self.batch if p.kind == "scheduled"),
            "ahead_s": SCHEDULE_AHEAD_S,
            "sent": len(sent),
            "early": sum(1 for s in sent if s < 0),
            "latest_after_send_at_s": round(max(sent), 3) if sent else None,
        }

    def records(self) -> list[dict]:
        return [r for r in self.pipeline.producer.ledger.get_many(self.job_ids) if r is not None]
