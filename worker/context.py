"""Per-process worker state: settings, Redis, ledger, COSMOS client and the send pool.

Global state department: one `WorkerContext` per process, built on first use.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import redis

from config.keys import Keys
from config.redis_client import redis_client
from config.settings import Settings
from cosmos_api.client import CosmosClient
from cosmos_api.smpp.client import SmppClient
from ledger.store import Ledger
from worker.outcome_writer import OutcomeWriter
from worker.slots import SendSlots
from worker.smpp_route import SmppRoute


@dataclass
class WorkerContext:
    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        s = self.settings
        return redis_client(s, role="worker", max_connections=s.batch_threads + s.worker_concurrency + 16)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings)

    @cached_property
    def outcomes(self) -> OutcomeWriter:
        """Attempt outcomes of every sending thread, written in shared round trips.

        A sender waits for its answer no longer than it would ride out a Redis blip.
        """
        return OutcomeWriter(self.ledger, wait_bound_s=self.settings.lease_s / 2)

    @cached_property
    def client(self) -> CosmosClient | SmppClient:
        """The route's client; both answer `send(to, sender, text, callback) -> Outcome`."""
        if self.settings.transport == "smpp":
            return self.smpp_route.client
        api_key, api_secret = self.settings.require_credentials()
        return CosmosClient(
            self.settings.api_url,
            api_key,
            api_secret,
            connect_timeout_s=self.settings.connect_timeout_s,
            read_timeout_s=self.settings.read_timeout_s,
        )

    @cached_property
    def smpp_route(self) -> SmppRoute:
        """This process's bind and receipt duties (started by the worker's lifecycle hooks)."""
        return SmppRoute(self.settings, self.ledger)

    @cached_property
    def send_pool(self) -> ThreadPoolExecutor:
        """Threads that send a bulk chunk's members concurrently."""
        return ThreadPoolExecutor(self.settings.batch_threads, thread_name_prefix="cosmos-send")

    @cached_property
    def send_slots(self) -> SendSlots:
        return SendSlots(self.settings.batch_threads)

    @cached_property
    def bulk_gate(self) -> threading.Lock:
        """One bulk thread per process asks Redis for a rate slot at a time; the others wait here."""
        return threading.Lock()


_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context(settings: Settings) -> WorkerContext:
    global _context
    with _lock:
        if _context is None or _context.settings is not settings:
            _context = WorkerContext(settings)
        return _context


def reset_context() -> None:
    """Forget connections (after a fork they belong to the parent)."""
    global _context
    with _lock:
        _context = None
