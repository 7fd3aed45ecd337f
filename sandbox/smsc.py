"""The sandbox's SMSC: an SMPP 3.4 server with the HTTP sandbox's magic numbers and faults.

It reads and writes PDUs with smpplib's codec, not the worker's, so a bug shared by one codec
cannot hide behind the other. Its state is read and changed under `/_sandbox/smpp/` (docs/sandbox.md).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from smpplib import gsm as smpplib_gsm  # type: ignore[import-untyped]
from smpplib import smpp

from sandbox.faults import ACCEPT_NOT_DELIVERED, MAGIC_NUMBERS

log = structlog.get_logger("cosmos.sandbox.smsc")

STATUS_OF = {"failed": 0x400, "spam": 0x401, "blacklist": 0x402, "internal_error": 0x08, "timeout": 0x64}
"""The HTTP sandbox's magic statuses as command_status (COSMOS_SMPP_STATUS_MAP's defaults)."""
VERBS = ("ok", "none", "drop", "accept_drop", "nack", "nack0", "throttle", "undeliv")
"""Script verbs besides `0x..` (a command_status): no response, close the connection after reading the
submit (without / after accepting it), generic_nack with / without its sequence, ESME_RTHROTTLED,
accepted with an UNDELIV receipt."""
RANDOM_FAULTS = ("none", "drop", "accept_drop", "0x8", "nack", "nack0", "throttle")
"""What `fault_rate` picks from, evenly: each way an SMSC fails a submit, taken or not."""
RECEIPT_RESEND_S = 2.0
"""A deliver_sm not answered within this is sent again (on any bound session)."""

# smpplib's table has a backtick where § belongs (0x5F) and none for the form feed (ESC 0x0A):
# corrected here, used only to decode.
_TABLE = smpplib_gsm.GSM_CHARACTER_TABLE
_GSM = _TABLE[:0x5F] + "§" + _TABLE[0x60 : 128 + 0x0A] + "\f" + _TABLE[128 + 0x0B :]


def decode_gsm(data: bytes) -> str:
    out, escaped = [], False
    for octet in data:
        if escaped:
            out.append(_GSM[128 + octet])
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            out.append(_GSM[octet])
    return "".join(out)


@dataclass
class SmscFaults:
    latency_ms: float = 0.0
    throttle_rate: int = 0
    """submit_sm per second (all sessions) above which the answer is ESME_RTHROTTLED; 0: none."""
    bind_cap: int = 0
    """Sessions bound at once above which a bind is refused with ESME_RALYBND; 0: none."""
    receipt_delay_s: float = 0.2
    receipts: bool = True
    receipt_before_response: bool = False
    receipts_on_other_bind: bool = False
    fault_rate: float = 0.0
    """Probability (0-1) that a submit meets one of RANDOM_FAULTS instead of its answer."""


class _Dummy:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


_CLIENT = _Dummy()


def make(command: str, sequence: int, **fields: Any) -> bytes:
    pdu = smpp.make_pdu(command, client=_CLIENT, **fields)
    pdu.sequence = sequence  # smpplib keeps the client's sequence over a keyword one
    data: bytes = pdu.generate()
    return data


@dataclass
class _Pending:
    frame_fields: dict[str, Any]
    kind: str  # receipt | inbound
    key: str
    sent_at: float = 0.0
    sequence: int = 0
    session: _Session | None = None


class _Session:
    def __init__(self, smsc: Smsc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int):
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self.number = number
        self.bound = False
        self.unanswered = 0
        self.peak_unanswered = 0
        self.sequence = itertools.count(1)

    def write(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)

    def close(self) -> None:
        self.writer.close()


class Smsc:
    def __init__(self, system_id: str, password: str, seed: int | None = None):
        self.system_id = system_id
        self.password = password
        self.faults = SmscFaults()
        self.random = random.Random(seed)
        self.server: asyncio.base_events.Server | None = None
        self.reset()

    def reset(self) -> None:
        self.faults = SmscFaults()
        self.sessions: list[_Session] = getattr(self, "sessions", [])
        self.scripts: dict[str, deque[str]] = {}
        self.refuse_until = 0.0
        self.messages: list[dict[str, Any]] = []
        self.counts = {
            "binds": 0,
            "binds_refused": 0,
            "submits": 0,
            "throttled": 0,
            "peak_sessions": 0,
            "peak_window": 0,
            "receipts_sent": 0,
            "receipts_acked": 0,
            "inbound_acked": 0,
        }
        self.pending: dict[str, _Pending] = {}
        self.acked: dict[str, int] = {}
        self._recent: deque[float] = deque()
        self._ids = itertools.count(1)
        self._session_numbers = itertools.count(1)

    # --- serving --------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)
        asyncio.get_running_loop().create_task(self._resend_loop())

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for s in list(self.sessions):
            s.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer, next(self._session_numbers))
        try:
            while True:
                header = await reader.readexactly(16)
                length = int.from_bytes(header[:4], "big")
                raw = header + await reader.readexactly(length - 16)
                pdu = smpp.parse_pdu(raw, client=_CLIENT, allow_unknown_opt_params=True)
                await self._handle(session, pdu)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception as exc:  # noqa: BLE001  a PDU we cannot read: nack it the way an SMSC does
            log.warning("unreadable PDU; session closed", error=str(exc))
            session.write(make("generic_nack", 0, status=0x02))
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            session.close()

    async def _handle(self, session: _Session, pdu: Any) -> None:
        command = pdu.command
        if command == "bind_transceiver":
            session.write(
                make("bind_transceiver_resp", pdu.sequence, status=self._bind_status(pdu), system_id="SANDBOX")
            )
            if self._bind_status(pdu, count=False) == 0:
                session.bound = True
                self.sessions.append(session)
                self.counts["binds"] += 1
                self.counts["peak_sessions"] = max(self.counts["peak_sessions"], len(self.sessions))
                self._flush_pending()
        elif command == "enquire_link":
            session.write(make("enquire_link_resp", pdu.sequence))
        elif command == "unbind":
            session.write(make("unbind_resp", pdu.sequence))
            session.close()
        elif command == "submit_sm":
            if not session.bound:
                session.write(make("submit_sm_resp", pdu.sequence, status=0x04, message_id=""))
                return
            asyncio.get_running_loop().create_task(self._submit(session, pdu))
        elif command in ("deliver_sm_resp", "generic_nack"):
            for key, p in list(self.pending.items()):
                if p.session is session and p.sequence == pdu.sequence:
                    del self.pending[key]
                    self.acked[key] = self.acked.get(key, 0) + 1
                    self.counts["receipts_acked" if p.kind == "receipt" else "inbound_acked"] += 1
        elif command.endswith("_resp"):
            pass
        else:
            session.write(make("generic_nack", pdu.sequence, status=0x03))

    def _bind_status(self, pdu: Any, count: bool = True) -> int:
        status = 0
        if time.monotonic() < self.refuse_until:
            status = 0x0D
        elif pdu.system_id.decode() != self.system_id:
            status = 0x0F
        elif pdu.password.decode() != self.password:
            status = 0x0E
        elif self.faults.bind_cap and len(self.sessions) >= self.faults.bind_cap:
            status = 0x05
        if status and count:
            self.counts["binds_refused"] += 1
        return status

    # --- submits --------------------------------------------------------------------------------
    async def _submit(self, session: _Session, pdu: Any) -> None:
        self.counts["submits"] += 1
        session.unanswered += 1
        session.peak_unanswered = max(session.peak_unanswered, session.unanswered)
        self.counts["peak_window"] = max(self.counts["peak_window"], session.peak_unanswered)
        try:
            await self._answer(session, pdu)
        finally:
            session.unanswered -= 1

    def _verb(self, to: str) -> str:
        script = self.scripts.get(to)
        if script:
            verb = script.popleft()
            if not script:
                del self.scripts[to]
            return verb
        magic = MAGIC_NUMBERS.get(to)
        if magic == ACCEPT_NOT_DELIVERED:
            return "undeliv"
        if magic in STATUS_OF:
            return hex(STATUS_OF[magic])
        return "ok"

    async def _answer(self, session: _Session, pdu: Any) -> None:
        to = pdu.destination_addr.decode()
        now = time.monotonic()
        while self._recent and self._recent[0] < now - 1:
            self._recent.popleft()
        throttled = self.faults.throttle_rate and len(self._recent) >= self.faults.throttle_rate
        verb = "throttle" if throttled else self._verb(to)
        if verb == "ok" and self.faults.fault_rate and self.random.random() < self.faults.fault_rate:
            verb = self.random.choice(RANDOM_FAULTS)
        if not throttled:
            self._recent.append(now)
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if verb == "none":
            return
        if verb == "nack":
            session.write(make("generic_nack", pdu.sequence, status=0x08))
            return
        if verb == "nack0":
            session.write(make("generic_nack", 0, status=0x08))
            return
        if verb == "throttle":
            self.counts["throttled"] += 1
            session.write(make("submit_sm_resp", pdu.sequence, status=0x58, message_id=""))
            return
        if verb == "drop":
            session.close()
            return
        if verb.startswith("0x"):
            session.write(make("submit_sm_resp", pdu.sequence, status=int(verb, 16), message_id=""))
            return
        message_id = f"{next(self._ids):08X}"
        self.messages.append(
            {
                "message_id": message_id,
                "to": to,
                "from": pdu.source_addr.decode(),
                "source_ton": pdu.source_addr_ton,
                "source_npi": pdu.source_addr_npi,
                "data_coding": pdu.data_coding,
                "short_message": bytes(pdu.short_message or b"").hex(),
                "text": self._text(pdu.data_coding, bytes(pdu.short_message or b"")),
                "registered_delivery": pdu.registered_delivery,
                "session": session.number,
            }
        )
        stat = "UNDELIV" if verb == "undeliv" else "DELIVRD"
        if self.faults.receipts and self.faults.receipt_before_response:
            self._receipt(message_id, to, stat, session)
            await asyncio.sleep(0.3)
        if verb == "accept_drop":
            session.close()
        else:
            session.write(make("submit_sm_resp", pdu.sequence, message_id=message_id))
        if self.faults.receipts and not self.faults.receipt_before_response:
            loop = asyncio.get_running_loop()
            loop.call_later(self.faults.receipt_delay_s, self._receipt, message_id, to, stat, session)

    @staticmethod
    def _text(data_coding: int, data: bytes) -> str:
        if data_coding == 8:
            return data.decode("utf-16-be", errors="replace")
        return decode_gsm(data) if data_coding == 0 else data.decode("latin-1")

    # --- deliver_sm: receipts and inbound messages, re-sent until answered --------------------------
    def _receipt(self, message_id: str, to: str, stat: str, session: _Session) -> None:
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        delivered = "001" if stat == "DELIVRD" else "000"
        text = (
            f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{stamp} done date:{stamp} stat:{stat} err:000 text:"
        )
        fields = dict(
            source_addr=to,
            destination_addr="COSMOS",
            esm_class=0x04,
            data_coding=0,
            short_message=text.encode(),
            receipted_message_id=message_id,
            message_state=2 if stat == "DELIVRD" else 5,
        )
        self.counts["receipts_sent"] += 1
        prefer = None if self.faults.receipts_on_other_bind else session
        self._push(_Pending(fields, "receipt", message_id), prefer)

    def inbound(self, sender: str, to: str, text: str) -> str:
        key = f"mo-{next(self._ids)}"
        try:
            data, coding = text.encode("ascii"), 0
        except UnicodeEncodeError:
            data, coding = text.encode("utf-16-be"), 8
        fields = dict(source_addr=sender, destination_addr=to, esm_class=0, data_coding=coding, short_message=data)
        self._push(_Pending(fields, "inbound", key), None)
        return key

    def _push(self, pending: _Pending, prefer: _Session | None) -> None:
        self.pending[pending.key] = pending
        self._send_pending(pending, prefer)

    def _send_pending(self, pending: _Pending, prefer: _Session | None = None) -> None:
        live = [s for s in self.sessions if s.bound and not s.writer.is_closing()]
        if not live:
            pending.session = None
            return
        if prefer in live:
            target = prefer
        else:
            others = [s for s in live if s is not prefer] or live
            target = self.random.choice(others)
        assert target is not None
        pending.session = target
        pending.sequence = next(target.sequence)
        pending.sent_at = time.monotonic()
        target.write(make("deliver_sm", pending.sequence, **pending.frame_fields))

    def _flush_pending(self) -> None:
        for p in list(self.pending.values()):
            if p.session is None or p.session not in self.sessions:
                self._send_pending(p)

    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for p in list(self.pending.values()):
                if p.session is None or p.session not in self.sessions or now - p.sent_at > RECEIPT_RESEND_S:
                    self._send_pending(p)

    # --- control --------------------------------------------------------------------------------
    def drop_sessions(self) -> int:
        n = len(self.sessions)
        for s in list(self.sessions):
            s.close()
        return n

    def state(self) -> dict[str, Any]:
        return {
            "sessions": len(self.sessions),
            **self.counts,
            "faults": asdict(self.faults),
            "messages": self.messages[-1000:],
            "pending": len(self.pending),
            "acked": self.acked,
            "refusing": max(0.0, self.refuse_until - time.monotonic()),
        }

    def set_faults(self, values: dict[str, Any]) -> None:
        known = set(SmscFaults.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown SMSC fault {sorted(unknown)}; known: {sorted(known)}")
        for name, value in values.items():
            setattr(self.faults, name, type(getattr(SmscFaults(), name))(value))

    def set_script(self, to: str, outcomes: list[str]) -> None:
        for verb in outcomes:
            if verb not in VERBS and not verb.startswith("0x"):
                raise ValueError(f"unknown SMSC outcome {verb!r}; known: {', '.join(VERBS)}, 0x<status>")
        self.scripts[to] = deque(outcomes)
