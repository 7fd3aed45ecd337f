"""The outcome writer: `finish` through shared round trips answers exactly as `Ledger.finish` would."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis

from config.settings import load_settings
from ledger.store import Ledger, NewJob
from tests.support.polling import wait_for
from tests.support.ports import free_port
from worker.outcome_writer import OutcomeWriter

TO = "033334445566770"


@pytest.fixture
def ledger(redis_server, redis_client, prefix) -> Ledger:
    return Ledger(redis_client, load_settings(redis_url=redis_server.url, redis_prefix=prefix))


def leased(ledger: Ledger, count: int) -> list[tuple[str, str]]:
    """`count` jobs recorded and leased for one attempt each: (job id, owner)."""
    jobs = [NewJob(uuid.uuid4().hex, "bulk", TO, "F", "x", None, False, None, "fp", 3600) for _ in range(count)]
    ledger.enqueue(jobs)
    owners = [f"owner-{i}" for i in range(count)]
    attempts = ledger.begin_many([j.job_id for j in jobs], owners, count_delivery=False)
    assert [a.verdict for a in attempts] == ["go"] * count
    return [(j.job_id, o) for j, o in zip(jobs, owners)]


class RoundTripOut:
    """Holds a writer as if a round trip were out: senders queue their outcomes, none is written."""

    def __init__(self, writer: OutcomeWriter):
        self.writer = writer

    def __enter__(self):
        self.writer._write_lock.acquire()
        self.start = self.writer._ensure_started
        self.writer._ensure_started = lambda: None  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc):
        self.writer._ensure_started = self.start  # type: ignore[method-assign]
        self.writer._write_lock.release()
        self.writer._ensure_started()


def in_threads(*calls) -> list[threading.Thread]:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    return threads


def test_outcomes_that_wait_for_a_round_trip_share_the_next_one_and_each_gets_its_own_answer(ledger):
    # Given 20 leased jobs whose outcomes arrive while a round trip is out:
    jobs = leased(ledger, 20)
    writer = OutcomeWriter(ledger, wait_bound_s=20, max_batch=20)
    answers: dict[str, tuple[str, str]] = {}

    def send(job_id: str, owner: str, index: int):
        def call() -> None:
            kind = "accepted" if index % 2 == 0 else "transient"
            answers[job_id] = writer.finish(
                job_id,
                owner,
                kind,
                status="ok" if kind == "accepted" else "timeout",
                http=200,
                message_id=f"Az_{index}",
            )

        return call

    with RoundTripOut(writer):
        threads = in_threads(*(send(job_id, owner, i) for i, (job_id, owner) in enumerate(jobs)))
        wait_for(lambda: writer._queue.qsize() == 20, what="every outcome queued")
    for thread in threads:
        thread.join(20)
    # Then they went in one round trip, each thread got its own job's answer, and the records say the same.
    assert (writer.outcomes, writer.batches) == (20, 1)
    states = ledger.states([job_id for job_id, _ in jobs])
    for i, ((job_id, _owner), state) in enumerate(zip(jobs, states)):
        assert answers[job_id][0] == ("sent" if i % 2 == 0 else "retry")
        assert state == ("sent" if i % 2 == 0 else "sending")


def test_with_no_round_trip_out_a_sender_writes_its_own_outcome_without_the_writer_thread(ledger):
    [(job_id, owner)] = leased(ledger, 1)
    writer = OutcomeWriter(ledger, wait_bound_s=10)
    assert writer.finish(job_id, owner, "accepted", status="ok", http=200, message_id="Az_1")[0] == "sent"
    assert writer._thread is None and (writer.outcomes, writer.batches) == (1, 1)


def test_one_outcome_is_written_at_once_not_when_its_neighbours_answer(ledger):
    # Given a chunk of 50 leased jobs of which one has an answer and 49 are still waiting for theirs:
    jobs = leased(ledger, 50)
    writer = OutcomeWriter(ledger, wait_bound_s=10)
    job_id, owner = jobs[0]
    # When its outcome is handed to the writer, then it is in the ledger when finish returns.
    assert writer.finish(job_id, owner, "accepted", status="ok", http=200, message_id="Az_9")[0] == "sent"
    assert ledger.get(job_id)["state"] == "sent"
    assert ledger.states([j for j, _ in jobs[1:]]) == ["sending"] * 49


def test_a_flushed_script_cache_is_reloaded_and_the_outcome_written_once(ledger):
    jobs = leased(ledger, 2)
    writer = OutcomeWriter(ledger, wait_bound_s=10)
    ledger.redis.script_flush()
    assert writer.finish(*jobs[0], "accepted", status="ok", http=200, message_id="Az_1")[0] == "sent"
    assert writer.finish(*jobs[1], "accepted", status="ok", http=200, message_id="Az_2")[0] == "sent"
    assert ledger.states([j for j, _ in jobs]) == ["sent", "sent"]


def test_a_redis_failure_reaches_the_caller_as_ledger_finish_would_raise_it(redis_server, prefix):
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    writer = OutcomeWriter(
        Ledger(down, load_settings(redis_url=redis_server.url, redis_prefix=prefix)), wait_bound_s=10
    )
    for _ in range(2):  # and the writer survives it
        with pytest.raises(redis.ConnectionError):
            writer.finish("job-1", "owner-1", "accepted", status="ok", http=200, message_id="Az_1")


def test_a_script_error_reaches_only_its_own_caller(ledger):
    jobs = leased(ledger, 2)
    writer = OutcomeWriter(ledger, wait_bound_s=10, max_batch=2)
    outcomes: dict[str, Any] = {}

    def call(name: str, *args, **kwargs):
        def run() -> None:
            try:
                outcomes[name] = writer.finish(*args, **kwargs)
            except redis.ResponseError as exc:
                outcomes[name] = exc

        return run

    with RoundTripOut(writer):  # both in the same round trip
        threads = in_threads(
            call("bad", *jobs[0], "defer", delay_s="not-a-number"),  # the script's arithmetic fails
            call("good", *jobs[1], "accepted", status="ok", http=200, message_id="Az_2"),
        )
        wait_for(lambda: writer._queue.qsize() == 2, what="both outcomes queued")
    for thread in threads:
        thread.join(10)
    assert writer.batches == 1
    assert isinstance(outcomes["bad"], redis.ResponseError) and outcomes["good"][0] == "sent"


def test_a_stuck_round_trip_fails_the_wait_within_its_bound(ledger):
    writer = OutcomeWriter(ledger, wait_bound_s=0.2)
    writer._write_lock.acquire()  # a round trip out that never comes back
    with pytest.raises(redis.TimeoutError):
        writer.finish("job-1", "owner-1", "accepted", status="ok", http=200, message_id="Az_1")
    writer._write_lock.release()
