"""A backlog waiting before any worker is up drains over SMPP: every message sent once, through one
bind held by one process and the submits of the other process relayed to it through Redis."""

from __future__ import annotations

from collections import Counter

from tests.support.polling import wait_for

BACKLOG = 1_000
FINAL = {"sent", "delivered"}


def test_a_backlog_enqueued_before_any_bind_is_sent_once_by_two_processes(smpp_fleet, smsc, smpp_producer):
    smsc.reset()
    numbers = [f"04477009{i:07d}" for i in range(BACKLOG)]
    jobs = smpp_producer.send_bulk([{"to": to, "sender": "Acme", "text": f"backlog {to}"} for to in numbers])
    for _ in range(2):
        smpp_fleet.start(concurrency=8, COSMOS_SMPP_MAX_BINDS="1", COSMOS_SMPP_WINDOW="100")

    def drained() -> bool:
        return all(state in FINAL for state in smpp_producer.ledger.states(jobs))

    wait_for(drained, timeout=180, interval=1.0, what=f"{BACKLOG} messages to be sent")
    state = smsc.state()
    sent = Counter(message["to"] for message in state["messages"])
    assert sorted(sent) == sorted(numbers)
    assert set(sent.values()) == {1}, "a message went out twice"
    assert state["submits"] == BACKLOG
    assert state["peak_sessions"] == 1  # one bind: the second process relayed its submits
