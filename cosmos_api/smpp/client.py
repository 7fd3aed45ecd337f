"""The SMPP client of one worker process: a bind held in a background asyncio thread, `send()` for
the worker's sending threads, with the same `send(...) -> Outcome` seam as the HTTP client.

The bind is taken only under a fleet-wide lease (`BindLease`, kept in Redis by the ledger): at most
COSMOS_SMPP_MAX_BINDS sessions across every process. A holder that cannot renew closes its session
before the lease ends; a process that dies stops renewing, so its slot frees itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

import structlog

from cosmos_api.outcomes import Outcome
from cosmos_api.smpp import pdu as P
from cosmos_api.smpp.answers import (
    BIND_REFUSALS,
    ESME_RALYBND,
    THROTTLE_PAUSE_S,
    ambiguous,
    hex_status,
    normalise_id,
    not_sent,
    parse_status_map,
    refused_bind,
)
from cosmos_api.smpp.session import BindRefused, SmppSession

log = structlog.get_logger("cosmos.smpp")

MAX_BACKOFF_S = 10.0
"""Longest wait between two bind attempts after a lost or refused connection (not a refused account)."""


class BindLease(Protocol):
    """A fleet-wide bind slot: `acquire` returns a slot number or None; the holder renews it."""

    lease_s: float

    def acquire(self) -> int | None: ...

    def renew(self, slot: int) -> bool: ...

    def release(self, slot: int) -> None: ...


@dataclass(frozen=True)
class SmppConfig:
    url: str
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    response_timeout_s: float = 30.0
    enquire_link_s: float = 30.0
    status_map: str = "0x400=failed,0x401=spam,0x402=blacklist"
    default_alphabet: str = "gsm"
    id_format: str = "as-is"
    probe_interval_s: float = 5.0
    bind_wait_s: float = 2.0
    price: float = 0.0

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"SmppConfig({self.url!r}, system_id={self.system_id!r})"


class SmppClient:
    """Sends over this process's bind; safe to share between threads."""

    def __init__(self, config: SmppConfig, lease: BindLease, on_deliver: Callable[[P.Pdu], None]):
        self.config = config
        self.lease = lease
        self.on_deliver = on_deliver
        self.status_map = parse_status_map(config.status_map)
        parts = urlsplit(config.url)
        self.host, self.port, self.tls = parts.hostname or "", parts.port or 2775, parts.scheme == "smpps"
        self.loop = asyncio.new_event_loop()
        self.session: SmppSession | None = None
        self.slot: int | None = None
        self.refused: int | None = None
        self.last_error = "not bound yet"
        self.binds_made = 0
        self._bound = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._main: asyncio.Future[None] | None = None
        self._lease_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cosmos-smpp-lease")
        self.relay: Callable[[str, str, str], Outcome | None] | None = None
        """Hands a submit to another process's bind (set by the worker); None when no bind is held."""

    def __repr__(self) -> str:
        return f"SmppClient({self.config.url!r})"

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cosmos-smpp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._main = asyncio.ensure_future(self._bind_forever(), loop=self.loop)
        try:
            self.loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop binding; let the window drain (bounded), unbind, give the lease back."""
        self._stopping = True
        if self._thread is None:
            return

        async def finish() -> None:
            session = self.session
            if session is not None:
                await session.unbind(drain_s=max(0.0, timeout - 3))
            if self._main is not None:
                self._main.cancel()

        try:
            asyncio.run_coroutine_threadsafe(finish(), self.loop).result(timeout)
        except Exception as exc:  # noqa: BLE001  a stop must finish whatever the session did
            log.warning("SMPP session did not close cleanly", error=str(exc))
        self._thread.join(timeout)
        if self.slot is not None:
            self._release()

    # --- the bind ---------------------------------------------------------------------------------
    async def _bind_forever(self) -> None:
        backoff = 0.5
        while not self._stopping:
            slot = await self._call(self.lease.acquire)
            if slot is None:
                self.last_error = "every bind slot of the fleet is held"
                await asyncio.sleep(random.uniform(0.5, 1.0))  # noqa: S311  spread the askers
                continue
            self.slot = slot
            session = SmppSession(
                window=self.config.window,
                response_timeout_s=self.config.response_timeout_s,
                enquire_link_s=self.config.enquire_link_s,
                status_map=self.status_map,
                default_alphabet=self.config.default_alphabet,
                on_deliver=self._deliver,
            )
            c = self.config
            try:
                await session.open(self.host, self.port, self.tls, c.system_id, c.password, c.system_type)
            except BindRefused as exc:
                self._release()
                self.last_error = str(exc)
                if exc.status in BIND_REFUSALS:
                    if self.refused is None:
                        log.error("SMSC refused the bind: sending pauses, probing", status=hex_status(exc.status))
                    self.refused = exc.status
                    await asyncio.sleep(c.probe_interval_s)
                else:
                    if exc.status == ESME_RALYBND:
                        log.warning("SMSC says already bound (an old session lives on); retrying")
                    await asyncio.sleep(backoff)
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            except (OSError, TimeoutError, asyncio.IncompleteReadError, P.PduError) as exc:
                self._release()
                self.last_error = f"cannot bind: {type(exc).__name__}: {exc}"
                log.warning("SMPP connection failed; retrying", error=self.last_error, wait_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if self.refused is not None:
                log.warning("SMSC accepts the bind again")
            self.refused = None
            backoff = 0.5
            self.binds_made += 1
            self.session = session
            self._bound.set()
            log.info("SMPP bound", slot=slot, window=c.window)
            try:
                await self._hold(session, slot)
            finally:
                self._bound.clear()
                self.session = None
                self._release()
            self.last_error = f"session ended: {session.close_reason}"
            log.warning("SMPP session ended; rebinding", reason=session.close_reason)
            await asyncio.sleep(random.uniform(0.2, 0.5))  # noqa: S311

    async def _hold(self, session: SmppSession, slot: int) -> None:
        """Renew the lease while the session lives; close it while the lease still covers it."""
        lease_s = self.lease.lease_s
        every = lease_s / 4
        covered_until = time.monotonic() + lease_s
        while not session.closed.is_set():
            try:
                await asyncio.wait_for(session.closed.wait(), every)
                return
            except TimeoutError:
                pass
            asked = time.monotonic()
            renewed = await self._call(lambda: self.lease.renew(slot), timeout=every)
            if renewed:
                covered_until = asked + lease_s
            elif renewed is False:
                session.abort("bind lease lost")
                return
            if time.monotonic() + every + 1.0 >= covered_until:
                session.abort("bind lease could not be renewed")
                return

    async def _call(self, fn: Callable[[], object], timeout: float = 5.0):  # type: ignore[no-untyped-def]
        """A blocking lease call off the loop; None when Redis did not answer."""
        try:
            # A thread of its own: receipts being recorded never hold a renewal up.
            return await asyncio.wait_for(self.loop.run_in_executor(self._lease_thread, fn), timeout)
        except Exception as exc:  # noqa: BLE001  Redis blips: the caller decides what None means
            log.warning("bind lease call failed", error=str(exc))
            return None

    def _release(self) -> None:
        slot, self.slot = self.slot, None
        if slot is not None:
            try:
                self.lease.release(slot)
            except Exception as exc:  # noqa: BLE001  the lease ends by itself
                log.warning("bind lease not released; it ends by itself", error=str(exc))

    async def _deliver(self, pdu: P.Pdu) -> None:
        await asyncio.to_thread(self.on_deliver, pdu)

    # --- sending ----------------------------------------------------------------------------------
    def send(self, to: str, sender: str, text: str, callback: str | None = None) -> Outcome:
        """One submit_sm; `callback` is ours to forward outcomes to (SMPP carries none).

        Without a bind of its own the process hands the submit to a process that holds one (`relay`).
        """
        if self.session is None and self.relay is not None and not self._stopping:
            relayed = self.relay(to, sender, text)
            if relayed is not None:
                return relayed
        if self.session is None and not self._stopping:
            self._bound.wait(self.config.bind_wait_s)
        future = self.submit_future(to, sender, text)
        if future is None:
            if self.refused is not None:
                return refused_bind(self.refused)
            return not_sent("not_bound", f"no SMPP bind: {self.last_error}", retry_after_s=THROTTLE_PAUSE_S)
        try:
            return future.result(timeout=2 * self.config.response_timeout_s + 5)
        except TimeoutError:
            future.cancel()
            return ambiguous("no_answer", 0, "submit did not finish in time")

    def submit_future(self, to: str, sender: str, text: str) -> concurrent.futures.Future[Outcome] | None:
        """A submit on this process's own bind, as a future; None without a bind."""
        session = self.session
        if session is None:
            return None
        return asyncio.run_coroutine_threadsafe(self._submit(session, to, sender, text), self.loop)

    async def _submit(self, session: SmppSession, to: str, sender: str, text: str) -> Outcome:
        outcome = await session.submit(to, sender, text)
        if outcome.kind == "accepted":
            outcome = replace(outcome, message_id=normalise_id(outcome.message_id), price=self.config.price)
        return outcome

    def status(self) -> dict[str, object]:
        session = self.session
        return {
            "bound": session is not None,
            "slot": self.slot,
            "in_flight": session.in_flight if session else 0,
            "refused": hex_status(self.refused) if self.refused is not None else None,
            "last_error": self.last_error,
        }
