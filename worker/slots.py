"""Send slots: a bulk chunk takes its members' leases only when threads are free to send them.

A lease taken while its send waits in a queue would run out before the request starts,
and an expired lease with a request marked in flight reads as an ambiguous attempt.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class SendSlots:
    """A counter of free send threads; a chunk waits until all its members fit at once."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.free = capacity
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, wanted: int):
        wanted = min(wanted, self.capacity)  # a chunk larger than the pool takes the whole pool
        with self._changed:
            self._changed.wait_for(lambda: self.free >= wanted)
            self.free -= wanted
        try:
            yield
        finally:
            self.give_back(wanted)

    def take_free(self, limit: int) -> int:
        """Take up to `limit` slots that are free now, without waiting; returns how many."""
        with self._changed:
            taken = max(0, min(limit, self.free))
            self.free -= taken
            return taken

    def give_back(self, count: int) -> None:
        if count > 0:
            with self._changed:
                self.free += count
                self._changed.notify_all()
