"""Send slots: a chunk starts only when all its members can be sent at once."""

from __future__ import annotations

import threading

from tests.support.polling import wait_for
from worker.slots import SendSlots


def test_a_chunk_waits_until_its_members_fit_then_runs():
    slots = SendSlots(capacity=10)
    started = threading.Event()
    with slots.hold(8):

        def second_chunk():
            with slots.hold(5):
                started.set()

        thread = threading.Thread(target=second_chunk)
        thread.start()
        assert not started.wait(0.2)  # 8 + 5 > 10: it must wait
        assert slots.free == 2
    wait_for(started.is_set, timeout=5, what="the second chunk to start once slots are free")
    thread.join(5)
    assert slots.free == 10


def test_a_chunk_larger_than_the_pool_takes_the_whole_pool():
    slots = SendSlots(capacity=4)
    with slots.hold(50):
        assert slots.free == 0
    assert slots.free == 4


def test_free_slots_are_taken_without_waiting_and_given_back():
    slots = SendSlots(capacity=4)
    with slots.hold(3):
        assert slots.take_free(5) == 1
        assert slots.take_free(5) == 0
        slots.give_back(1)
    assert slots.take_free(2) == 2 and slots.free == 2
