"""Outcome writes of one worker process, group-committed: many `finish` scripts per Redis round trip.

A sending thread that finds no round trip out writes its outcome itself, at once, together with
whatever other threads have queued meanwhile. One that finds a round trip out queues its outcome
and waits for the ledger's answer (its next step depends on it); the writer thread takes everything
queued and writes it in one pipeline as soon as the round trip out is back. Nothing is held back on
purpose, so an outcome reaches the ledger within about two round trips of its answer, never when a
whole chunk is done: a SIGKILL meanwhile must not turn accepted sends into ambiguous ones.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import redis

from ledger.store import Ledger

MAX_BATCH = 32
"""Outcomes per round trip: 32 short scripts hold Redis ~1-3 ms, so a queued outcome waits ~5 ms at most."""


class _Pending:
    """One outcome waiting for its round trip; its sender blocks on `done` until the answer is in."""

    __slots__ = ("args", "done", "result")

    def __init__(self, args: tuple[object, ...]):
        self.args = args
        self.done = threading.Event()
        self.result: tuple[str, str] | Exception = ("", "")


class OutcomeWriter:
    """`finish` like `Ledger.finish` (the same arguments, answer and errors), in shared round trips."""

    def __init__(self, ledger: Ledger, *, wait_bound_s: float, max_batch: int = MAX_BATCH):
        self.ledger = ledger
        self.wait_bound_s = wait_bound_s
        """Longest a sender waits for its answer; then it sees a redis.TimeoutError, as from a stuck socket."""
        self.max_batch = max_batch
        self.batches = 0
        """Round trips made (tests and the benchmark read it: outcomes per round trip = outcomes / batches)."""
        self.outcomes = 0
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        """Held by whoever has a round trip out: the writer thread or a sender writing directly."""
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def finish(self, job_id: str, owner: str, kind: str, **outcome: Any) -> tuple[str, str]:
        """Record an attempt's outcome (`Ledger.finish_args`' keywords); returns what `Ledger.finish` would.

        Raises what `Ledger.finish` would (redis.ConnectionError, redis.TimeoutError, a script error),
        so the caller's ride-out of a Redis blip stays as it is.
        """
        pending = _Pending(self.ledger.finish_args(job_id, owner, kind, **outcome))
        if self._write_lock.acquire(blocking=False):
            # Nobody is writing: write now, with whatever waits, and skip the hop to the writer thread
            # (at light load that hop would be the only cost batching adds).
            try:
                self._write([pending, *self._waiting()])
            finally:
                self._write_lock.release()
        else:
            self._queue.put(pending)
            self._ensure_started()
            if not pending.done.wait(self.wait_bound_s):
                raise redis.TimeoutError(f"outcome of job {job_id} not written within {self.wait_bound_s:g} s")
        if isinstance(pending.result, Exception):
            raise pending.result
        return pending.result

    def _waiting(self) -> list[_Pending]:
        batch: list[_Pending] = []
        while len(batch) < self.max_batch - 1:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cosmos-outcome-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            with self._write_lock:
                self._write([first, *self._waiting()])

    def _write(self, batch: list[_Pending]) -> None:
        try:
            results: list[tuple[str, str] | Exception] = self.ledger.finish_each([p.args for p in batch])
        except Exception as exc:  # every waiter must be answered, whatever happened to the round trip
            results = [exc] * len(batch)
        self.batches += 1
        self.outcomes += len(batch)
        for pending, result in zip(batch, results):
            pending.result = result
            pending.done.set()
