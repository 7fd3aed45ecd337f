"""One bound SMPP session (asyncio): the window, responses by sequence number, keep-alive, receipts.

What it guarantees to the code above it:
- at most `window` submit_sm awaiting their responses;
- every submit ends in an `Outcome` that tells not-sent (generic_nack with our sequence, never
  written) from maybe-sent (no response in time, connection lost with it in flight);
- a deliver_sm is answered only after `on_deliver` returned (its receipt is recorded), so a crash
  before that makes the SMSC send it again.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable

import structlog

from cosmos_api.outcomes import Outcome
from cosmos_api.smpp import pdu as P
from cosmos_api.smpp.answers import THROTTLE_PAUSE_S, THROTTLED, ambiguous, from_status, hex_status, not_sent
from cosmos_api.smpp.gsm import encode_text

log = structlog.get_logger("cosmos.smpp")

DeliverHandler = Callable[[P.Pdu], Awaitable[None]]


class BindRefused(Exception):
    def __init__(self, status: int):
        super().__init__(f"bind refused ({hex_status(status)})")
        self.status = status


class SessionClosed(Exception):
    """The connection ended with the PDU in flight."""


class _Nacked(Exception):
    def __init__(self, status: int):
        self.status = status


class SmppSession:
    def __init__(
        self,
        *,
        window: int,
        response_timeout_s: float,
        enquire_link_s: float,
        status_map: dict[int, str],
        default_alphabet: str,
        on_deliver: DeliverHandler,
    ):
        self.window = window
        self.response_timeout_s = response_timeout_s
        self.enquire_link_s = enquire_link_s
        self.status_map = status_map
        self.default_alphabet = default_alphabet
        self.on_deliver = on_deliver
        self._slots = asyncio.Semaphore(window)
        self._pending: dict[int, asyncio.Future[P.Pdu]] = {}
        self._sequence = itertools.count(1)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering: set[asyncio.Task[None]] = set()
        self._throttled_until = 0.0
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.in_flight = 0
        self.peak_in_flight = 0

    def next_sequence(self) -> int:
        seq = next(self._sequence)
        if seq > P.MAX_SEQUENCE:
            self._sequence = itertools.count(2)
            seq = 1
        return seq

    # --- connecting ------------------------------------------------------------------------------
    async def open(self, host: str, port: int, tls: bool, system_id: str, password: str, system_type: str) -> None:
        """Connect and bind as a transceiver; BindRefused or OSError/TimeoutError when that fails."""
        context = ssl.create_default_context() if tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), self.response_timeout_s
        )
        self._reader, self._writer = reader, writer
        seq = self.next_sequence()
        writer.write(P.bind_transceiver(seq, system_id, password, system_type))
        answer = await asyncio.wait_for(self._read_pdu(), self.response_timeout_s)
        if answer.command_id != P.BIND_TRANSCEIVER_RESP or answer.status != 0:
            writer.close()
            raise BindRefused(answer.status or 0x0D)
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._keep_alive())]

    async def _read_pdu(self) -> P.Pdu:
        assert self._reader is not None
        header = await self._reader.readexactly(P.HEADER.size)
        length = P.HEADER.unpack(header)[0]
        if not P.HEADER.size <= length <= P.MAX_PDU_BYTES:
            raise P.PduError(f"command_length {length}")
        return P.decode(header + await self._reader.readexactly(length - P.HEADER.size))

    # --- sending --------------------------------------------------------------------------------
    async def submit(self, to: str, sender: str, text: str) -> Outcome:
        started = time.perf_counter()
        data_coding, message = encode_text(text, self.default_alphabet)

        def frame_for(seq: int) -> bytes:
            return P.submit_sm(seq, to, sender, data_coding, message)

        try:
            frame_for(0)
        except ValueError as exc:
            return Outcome("permanent", "invalid_text", route="smpp", error=str(exc))
        try:
            await asyncio.wait_for(self._slots.acquire(), self.response_timeout_s)
        except TimeoutError:
            return not_sent("window_full", "no window slot in time", retry_after_s=THROTTLE_PAUSE_S)
        try:
            wait = self._throttled_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.closed.is_set() or self._writer is None:
                return not_sent("not_bound", "session closed before sending", retry_after_s=THROTTLE_PAUSE_S)
            seq = self.next_sequence()
            future: asyncio.Future[P.Pdu] = asyncio.get_running_loop().create_future()
            self._pending[seq] = future
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                self._writer.write(frame_for(seq))
                answer = await asyncio.wait_for(future, self.response_timeout_s)
            except TimeoutError:
                return ambiguous("no_answer", _ms(started), f"no submit_sm_resp within {self.response_timeout_s:g} s")
            except SessionClosed as exc:
                return ambiguous("connection_lost", _ms(started), f"connection lost in flight: {exc}")
            except _Nacked as nack:
                return not_sent("nacked", "generic_nack for our submit_sm", hex_status(nack.status))
            finally:
                self._pending.pop(seq, None)
                self.in_flight -= 1
            if answer.status in THROTTLED:
                self._throttled_until = max(self._throttled_until, time.monotonic() + THROTTLE_PAUSE_S)
            return from_status(answer.status, str(answer.fields.get("id", "")), _ms(started), self.status_map)
        finally:
            self._slots.release()

    # --- receiving ------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                pdu = await self._read_pdu()
                await self._dispatch(pdu)
        except (asyncio.IncompleteReadError, OSError, P.PduError) as exc:
            self._close(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        except asyncio.CancelledError:
            self._close("closed")
            raise

    async def _dispatch(self, pdu: P.Pdu) -> None:
        cid = pdu.command_id
        if cid == P.GENERIC_NACK:
            future = self._pending.get(pdu.sequence)
            if future is None:
                # Not ours to place: the session is corrupt, everything in flight is unknown.
                self._close(f"generic_nack {hex_status(pdu.status)} without our sequence")
            elif not future.done():
                future.set_exception(_Nacked(pdu.status))
        elif cid & 0x80000000:
            future = self._pending.get(pdu.sequence)
            if future is not None and not future.done():
                future.set_result(pdu)
            elif cid == P.UNBIND_RESP:
                self._close("unbound")
        elif cid == P.DELIVER_SM:
            # Each in its own task: a slow record never holds up the responses behind it.
            task = asyncio.create_task(self._deliver(pdu))
            self._delivering.add(task)  # a reference, or the loop may drop the task half-way
            task.add_done_callback(self._delivering.discard)
        elif cid == P.ENQUIRE_LINK:
            self._write(P.encode(P.ENQUIRE_LINK_RESP, pdu.sequence))
        elif cid == P.UNBIND:
            self._write(P.encode(P.UNBIND_RESP, pdu.sequence))
            self._close("the SMSC unbound")
        else:
            self._write(P.encode(P.GENERIC_NACK, pdu.sequence, status=0x03))  # ESME_RINVCMDID

    async def _deliver(self, pdu: P.Pdu) -> None:
        try:
            await self.on_deliver(pdu)
        except Exception as exc:  # not recorded: no response, so the SMSC sends it again
            log.warning("deliver_sm not recorded; left unanswered for the SMSC to repeat", error=str(exc))
            return
        self._write(P.encode(P.DELIVER_SM_RESP, pdu.sequence, b"\0"))

    async def _keep_alive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self.enquire_link_s)
            seq = self.next_sequence()
            future: asyncio.Future[P.Pdu] = asyncio.get_running_loop().create_future()
            self._pending[seq] = future
            self._write(P.encode(P.ENQUIRE_LINK, seq))
            try:
                await asyncio.wait_for(future, self.response_timeout_s)
            except (TimeoutError, SessionClosed, _Nacked):
                self._close("no enquire_link_resp")
            finally:
                self._pending.pop(seq, None)

    def _write(self, frame: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(frame)

    # --- closing --------------------------------------------------------------------------------
    def _close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionClosed(reason))
        if self._writer is not None:
            self._writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def unbind(self, drain_s: float) -> None:
        """Stop and let the window drain (bounded), unbind, wait briefly for unbind_resp, close."""
        deadline = time.monotonic() + drain_s
        while self.in_flight and time.monotonic() < deadline and not self.closed.is_set():
            await asyncio.sleep(0.05)
        if not self.closed.is_set():
            seq = self.next_sequence()
            future: asyncio.Future[P.Pdu] = asyncio.get_running_loop().create_future()
            self._pending[seq] = future
            self._write(P.encode(P.UNBIND, seq))
            try:
                await asyncio.wait_for(future, 2.0)
            except (TimeoutError, SessionClosed, _Nacked):
                pass
        self._close("unbound by us")

    def abort(self, reason: str) -> None:
        self._close(reason)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
