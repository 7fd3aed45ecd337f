"""Chaos suite: faults injected into real processes; every job must end in exactly one final state."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from ledger.stats import stats
from producers.producer import SmsProducer
from tests.support.polling import wait_for

FINAL = {"sent", "delivered", "not_delivered", "dead", "expired", "cancelled", "held"}

FAST_FAILOVER = dict(
    # Time scaled down: short timeouts and a short lease margin make a short lease, so a killed worker's
    # jobs come back in seconds; no test waits on a production-length timer.
    COSMOS_CONNECT_TIMEOUT_S="0.5",
    COSMOS_READ_TIMEOUT_S="1.0",
    COSMOS_LEASE_MARGIN_S="1",
    COSMOS_REQUEUE_GRACE_S="3",  # at 1 s, test_redis_restart_from_aof_loses_nothing[shutdown] leaves jobs unfinished
    COSMOS_RECONCILER_INTERVAL_S="0.2",
    COSMOS_MAX_ATTEMPTS="30",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/chaos/" in str(item.fspath):
            item.add_marker(pytest.mark.chaos)


@dataclass
class Tally:
    """Lost and duplicate counts of a load of unique texts to one number."""

    lost: int
    duplicates: int
    silent_duplicates: int
    states: dict

    def show(self, label: str) -> None:
        print(
            f"\n[{label}] lost={self.lost} duplicates={self.duplicates} "
            f"silent_duplicates={self.silent_duplicates} states={self.states}"
        )


def load(producer, to: str, count: int, tag: str, bulk: bool = True) -> tuple[list[str], list[str]]:
    texts = [f"{tag} {i}" for i in range(count)]
    if bulk:
        ids = producer.send_bulk([{"to": to, "sender": "chaos", "text": t} for t in texts])
    else:
        ids = [producer.send_sms(to, "chaos", t) for t in texts]
    return ids, texts


def outage_over(sandbox) -> bool:
    """Whether the sandbox's scripted outage has ended (it answers 500 internal_error until then)."""
    return requests.get(f"{sandbox.base_url}/_sandbox/outage", timeout=5).json()["remaining_s"] <= 0


def settle(producer, job_ids, timeout=120.0) -> list[str]:
    """Wait until every job is final; returns their states."""

    def all_final():
        states = producer.ledger.states(job_ids)
        return states if all(s in FINAL for s in states) else None

    return wait_for(all_final, timeout=timeout, interval=0.25, what="every job to reach a final state")


def tally(producer, sandbox, to: str, job_ids, texts) -> Tally:
    states = producer.ledger.states(job_ids)
    counts = {c["text"]: c["count"] for c in sandbox.accepted()["counts"] if c["to"] == to}
    duplicates = sum(max(0, counts.get(t, 0) - 1) for t in texts)
    figures = stats(producer.ledger)
    silent = max(0, duplicates - figures["ambiguous_resends"])
    by_state: dict[str, int] = {}
    for s in states:
        by_state[s] = by_state.get(s, 0) + 1
    return Tally(sum(s not in FINAL for s in states), duplicates, silent, by_state)


@pytest.fixture
def workers(worker_processes):
    """Chaos kills workers: real processes."""
    return worker_processes


@pytest.fixture
def chaos_env():
    return dict(FAST_FAILOVER)


@pytest.fixture
def producer(settings_for, sandbox, chaos_env):
    """A producer on the same scaled-down clock: the outbox grace it writes decides when a queued job
    whose broker message died with its worker is republished (60 s at the default)."""
    return SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url, **chaos_env))
