"""Outcome writes of one worker process, batched: many `finish` scripts per Redis round trip.

A sending thread that finds no round trip out writes its outcome itself, at once. One that
finds a round trip out hands its outcome to the writer thread and waits for the ledger's
answer (its next step depends on it); the writer takes everything waiting and writes it in
one pipeline as soon as the round trip out is back (group commit). Nothing is held back on
purpose beyond `linger_s` (default 0), so an outcome reaches the ledger within about two
round trips of its answer, never when a whole chunk is done: a SIGKILL meanwhile must not
turn accepted sends into ambiguous ones.

Wiring (not done yet: see bench/README.md, a Redis kill -9 chaos test fails with it):
`WorkerContext.outcomes = cached_property(lambda self: OutcomeWriter(self.ledger))`, and in
`worker/delivery.py` `record()`: `ride_out(lambda: ctx.outcomes.finish(*args, **kwargs), ...)`.
"""

from __future__ import annotations

import queue
import threading
import time

import redis

from ledger.scripts import Scripts
from ledger.store import Ledger

MAX_BATCH = 32
"""Outcomes per round trip: 32 short scripts hold Redis ~1-3 ms, so queued + own trip stay near 5 ms."""
WAIT_BOUND_S = 15.0
"""Longest a sender waits for its answer (past the Redis socket timeout); then it sees a TimeoutError."""
_STOP = object()


class _Slot:
    """One thread's pending write: reused for every outcome of that thread (it has one at a time)."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()  # released by the writer when the answer is in
        self.result: tuple[str, str] = ("", "")
        self.error: BaseException | None = None


class OutcomeWriter:
    """`finish` like `Ledger.finish`, the same arguments and answer, written in shared round trips."""

    def __init__(
        self, ledger: Ledger, *, max_batch: int = MAX_BATCH, linger_s: float = 0.0, wait_bound_s: float = WAIT_BOUND_S
    ):
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.wait_bound_s = wait_bound_s
        self.scripts = Scripts(ledger.redis)
        self.sha = self.scripts.shas["finish"]
        self.batches = 0
        """Round trips made (a test and the benchmark read it; writes per round trip = outcomes / batches)."""
        self.outcomes = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()
        """Held by whoever has a round trip out: the writer thread or a sender writing directly."""

    # --- the senders' side --------------------------------------------------------------
    def finish(
        self,
        job_id: str,
        owner: str,
        kind: str,
        *,
        status: str = "",
        http: int | None = None,
        latency_ms: int = 0,
        message_id: str = "",
        price: float = 0.0,
        error: str = "",
        delay_s: float = 0.0,
    ) -> tuple[str, str]:
        """Record an attempt's outcome; returns (what happened, breaker change or '').

        Raises what `Ledger.finish` would (redis.ConnectionError, redis.TimeoutError, a script
        error), so the caller's ride-out of a Redis blip stays as it is.
        """
        args = finish_args(
            self.ledger,
            job_id,
            owner,
            kind,
            status=status,
            http=http,
            latency_ms=latency_ms,
            message_id=message_id,
            price=price,
            error=error,
            delay_s=delay_s,
        )
        slot = self._slot()
        item = (args, slot)
        if self._write_lock.acquire(blocking=False):
            # Nobody is writing: write this one now, with whatever else waits, and skip the hop to
            # the writer thread (at light load that hop would be the only cost batching adds).
            try:
                batch = [item]
                if self._gather(batch, linger_s=0.0):
                    self._queue.put(_STOP)  # stop() was called meanwhile: leave it for the writer thread
                self._write(batch)
            finally:
                self._write_lock.release()
        else:
            self._ensure_started()
            self._queue.put(item)
        if not slot.done.acquire(timeout=self.wait_bound_s):
            # The writer is stuck or gone: this thread gets a fresh slot, the old one is abandoned.
            self._local.slot = None
            raise redis.TimeoutError(f"outcome of job {job_id} not written within {self.wait_bound_s:g} s")
        if slot.error is not None:
            error_seen, slot.error = slot.error, None
            raise error_seen
        return slot.result

    def _slot(self) -> _Slot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot()
        return slot

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cosmos-outcome-writer", daemon=True)
                self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then end the writer thread (tests; worker shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout_s)

    # --- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            with self._write_lock:
                batch = [first]
                stop = self._gather(batch, self.linger_s)
                self._write(batch)
            if stop:
                return

    def _gather(self, batch: list, linger_s: float) -> bool:
        """Add what is already waiting (and what arrives within linger_s) to `batch`; True on stop."""
        deadline = time.monotonic() + linger_s
        while len(batch) < self.max_batch:
            try:
                wait = deadline - time.monotonic()
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _write(self, batch: list) -> None:
        try:
            replies = self._execute([args for args, _slot in batch])
        except BaseException as exc:  # noqa: BLE001 (every waiter must be answered, whatever happened)
            replies = [exc] * len(batch)
        self.batches += 1
        self.outcomes += len(batch)
        for (_args, slot), reply in zip(batch, replies):
            if isinstance(reply, BaseException):
                slot.error = reply
            else:
                slot.result = (reply[0], reply[1])
            slot.done.release()

    def _execute(self, calls: list[tuple]) -> list:
        """One pipeline of `finish` calls; those refused for a missing script run again once it is loaded."""
        replies = self._pipeline(calls)
        missing = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:  # a NoScriptError means that call did not run: running it again is safe
            self.ledger.redis.script_load(self.scripts.sources["finish"])
            for i, reply in zip(missing, self._pipeline([calls[i] for i in missing])):
                replies[i] = reply
        return replies

    def _pipeline(self, calls: list[tuple]) -> list:
        pipe = self.ledger.redis.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(self.sha, 0, *args)
        return pipe.execute(raise_on_error=False)


def finish_args(
    ledger: Ledger,
    job_id: str,
    owner: str,
    kind: str,
    *,
    status: str = "",
    http: int | None = None,
    latency_ms: int = 0,
    message_id: str = "",
    price: float = 0.0,
    error: str = "",
    delay_s: float = 0.0,
) -> tuple:
    """The `finish` script's arguments exactly as `Ledger.finish` passes them (a test holds the two together)."""
    # The arguments every script of this ledger starts with (prefix, retention, ...), then finish's own.
    return (
        *ledger._common,
        *ledger.finish_args(
            job_id,
            owner,
            kind,
            status=status,
            http=http,
            latency_ms=latency_ms,
            message_id=message_id,
            price=price,
            error=error,
            delay_s=delay_s,
        ),
    )
