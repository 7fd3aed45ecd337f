"""The SMPP route's fleet-wide limits under real processes: binds, windows, a bind holder killed.

Two workers share one bind (COSMOS_SMPP_MAX_BINDS=1); the simulator counts sessions and unanswered
submits as the SMSC sees them.
"""

from __future__ import annotations

import time

import pytest

from tests.support.polling import wait_for
from tests.support.smsc_fixture import SmscHandle

WINDOW = 3


@pytest.fixture(scope="module")
def fleet(smpp_fleet, smpp_env):
    smpp_env.update(COSMOS_SMPP_WINDOW=str(WINDOW), COSMOS_SMPP_MAX_BINDS="1", COSMOS_MAX_AMBIGUOUS_RESENDS="10")
    smpp_fleet.env.update(smpp_env)
    smpp_fleet.start(concurrency=8)
    smpp_fleet.start(concurrency=8)
    return smpp_fleet


def delivered(producer, job_ids: list[str]) -> bool:
    return all(state == "delivered" for state in producer.ledger.states(job_ids))


def test_two_workers_never_exceed_the_bind_cap_or_the_window(fleet, smsc: SmscHandle, smpp_producer):
    smsc.faults(latency_ms=100)
    ids = smpp_producer.send_bulk(
        [{"to": f"04477009{i:07d}", "sender": "Acme", "text": f"window {i}"} for i in range(40)]
    )
    wait_for(lambda: delivered(smpp_producer, ids), timeout=60, what="all 40 delivered")
    state = smsc.state()
    assert state["peak_sessions"] == 1, state
    assert 1 < state["peak_window"] <= WINDOW, state
    assert len({m["to"] for m in state["messages"]}) == 40 and len(state["messages"]) == 40
    smsc.faults(latency_ms=0)


def test_killing_the_bind_holder_frees_its_bind_and_loses_no_receipt(fleet, smsc: SmscHandle, smpp_producer):
    holder_pid = _bind_holder_pid(smpp_producer)
    [holder] = [w for w in fleet.started if w.proc.pid == holder_pid and w.proc.poll() is None]
    smsc.faults(receipt_delay_s=2.0)
    ids = [smpp_producer.send_sms(f"04477008{i:07d}", "Acme", f"kill {i}") for i in range(10)]
    wait_for(
        lambda: all(s in ("sent", "delivered") for s in smpp_producer.ledger.states(ids)), timeout=30, what="all sent"
    )
    binds_before = smsc.state()["binds"]
    holder.kill()
    killed_at = time.monotonic()
    wait_for(lambda: smsc.state()["binds"] > binds_before, timeout=15, what="another worker to bind")
    assert time.monotonic() - killed_at < 10
    wait_for(lambda: delivered(smpp_producer, ids), timeout=30, what="every receipt applied")
    records = [smpp_producer.get_status(i) for i in ids]
    assert all(r and r["extra_sends"] == 0 and r["ambiguous_resends"] == 0 for r in records), records
    state = smsc.state()
    assert state["pending"] == 0 and state["peak_sessions"] == 1, state
    smsc.faults(receipt_delay_s=0.2)


def test_an_smsc_restart_mid_window_loses_nothing_and_counts_every_resend(fleet, smsc: SmscHandle, smpp_producer):
    smsc.faults(latency_ms=400)
    before = smsc.state()["submits"]
    ids = [smpp_producer.send_sms(f"04477007{i:07d}", "Acme", f"restart {i}") for i in range(12)]
    wait_for(lambda: smsc.state()["submits"] - before >= WINDOW, timeout=20, what="a full window in flight")
    assert smsc.drop() == 1  # every session gone with submits unanswered, as in an SMSC restart
    smsc.faults(latency_ms=0)
    wait_for(lambda: delivered(smpp_producer, ids), timeout=60, what="every message delivered after the restart")
    records = {i: smpp_producer.get_status(i) for i in ids}
    assert sum(r["ambiguous_resends"] for r in records.values() if r) >= 1
    for record in records.values():
        assert record is not None
        copies = len(smsc.messages(record["to"]))
        # The SMSC took some in-flight submits it never answered: each extra copy is a counted resend.
        assert 1 <= copies <= 1 + record["ambiguous_resends"], record


@pytest.mark.parametrize("count", [100, pytest.param(300, marks=pytest.mark.long)])
def test_exactly_once_over_smpp_with_thirty_percent_faults(fleet, smsc: SmscHandle, smpp_producer, count):
    smsc.faults(fault_rate=0.3)
    numbers = [f"04477006{count}{i:04d}" for i in range(count)]
    ids = smpp_producer.send_bulk([{"to": n, "sender": "Acme", "text": f"exactly once {n}"} for n in numbers])
    wait_for(
        lambda: delivered(smpp_producer, ids) or _states(smpp_producer, ids),
        timeout=120,
        what=f"all {count} delivered",
    )
    assert delivered(smpp_producer, ids), _states(smpp_producer, ids)
    smsc.faults(fault_rate=0.0)
    by_number: dict[str, int] = {}
    for message in smsc.messages():
        by_number[message["to"]] = by_number.get(message["to"], 0) + 1
    lost = [n for n in numbers if by_number.get(n, 0) == 0]
    assert lost == []
    for job in ids:
        record = smpp_producer.get_status(job)
        assert record is not None
        copies = by_number[record["to"]]
        # A second copy only after an attempt whose outcome was unknown, and then counted.
        assert copies - 1 <= record["ambiguous_resends"], record
    print(f"\n[smpp exactly-once] {count} messages, {sum(by_number.values()) - count} duplicates, all counted")


def _states(producer, ids: list[str]) -> dict[str, int]:
    """Counts per state, once none is in flight any more (else empty: keep waiting)."""
    counts: dict[str, int] = {}
    for state in producer.ledger.states(ids):
        counts[str(state)] = counts.get(str(state), 0) + 1
    return counts if set(counts) <= {"delivered", "held", "dead", "expired"} else {}


def _bind_holder_pid(producer) -> int:
    key = f"{producer.settings.redis_prefix}:smpp:bind:0"
    holder = wait_for(lambda: producer.redis.get(key), timeout=15, what="a bind holder")
    text = holder.decode() if isinstance(holder, bytes) else str(holder)
    return int(text.split(":")[1])
