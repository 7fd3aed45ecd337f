"""The SMPP route inside a worker process: the bind lease in Redis, receipts into the ledger.

`SmppRoute` is built by the worker's context and started by its lifecycle hooks, so a plain
`celery -A worker worker` process binds and sends over SMPP exactly as `cosmos-sms worker` does.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import redis
import structlog

from config.redis_client import redis_client
from config.settings import Settings
from cosmos_api.outcomes import Outcome
from cosmos_api.smpp import pdu as P
from cosmos_api.smpp.answers import ambiguous, normalise_id, not_sent
from cosmos_api.smpp.client import SmppClient, SmppConfig
from cosmos_api.smpp.receipts import Receipt, read_deliver_sm
from ledger.smpp_relay import SmppRelay
from ledger.store import Ledger

log = structlog.get_logger("cosmos.smpp")

BIND_LEASE_S = 6.0
"""A bind slot's lease: renewed every quarter of it, so a dead holder's slot is free within ~6 s."""
EARLY_RECEIPT_POLL_S = 1.0
"""How often kept receipts are matched again against acceptances recorded since."""


class RedisBindLease:
    """A `BindLease` on the ledger's `bind.lua`: one holder id per process."""

    def __init__(self, ledger: Ledger, lease_s: float = BIND_LEASE_S):
        self.ledger = ledger
        self.lease_s = lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> int | None:
        slot = self.ledger.bind_slot("acquire", self.holder, lease_s=self.lease_s)
        return None if slot < 0 else slot

    def renew(self, slot: int) -> bool:
        return self.ledger.bind_slot("renew", self.holder, slot, self.lease_s) == 1

    def release(self, slot: int) -> None:
        self.ledger.bind_slot("release", self.holder, slot)


class SmppRoute:
    """This process's SMPP client plus the receipt duties that go with a bind."""

    def __init__(self, settings: Settings, ledger: Ledger):
        url, system_id, password = settings.require_smpp()
        own_redis = redis_client(settings, role="worker", max_connections=8)
        self.settings = settings
        self.ledger = ledger
        self.client = SmppClient(
            SmppConfig(
                url=url,
                system_id=system_id,
                password=password,
                system_type=settings.smpp_system_type,
                window=settings.smpp_window,
                response_timeout_s=settings.smpp_response_timeout_s,
                enquire_link_s=settings.smpp_enquire_link_s,
                status_map=settings.smpp_status_map,
                default_alphabet=settings.smpp_default_alphabet,
                id_format=settings.smpp_id_format,
                probe_interval_s=settings.pause_probe_interval_s,
                price=settings.smpp_price or 0.0,
            ),
            # The lease and the relay on connections of their own: busy sending threads never starve a renewal.
            RedisBindLease(Ledger(own_redis, settings)),
            self.on_deliver,
        )
        self.relay = SmppRelay(ledger.redis, ledger.keys, settings.smpp_max_binds)
        self.relay_served = SmppRelay(own_redis, ledger.keys, settings.smpp_max_binds)
        self.client.relay = self.relay_send
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._answers = ThreadPoolExecutor(4, thread_name_prefix="cosmos-smpp-relay")

    def start(self) -> None:
        self.client.start()
        for target, name in ((self._match_kept_receipts, "receipts"), (self._serve_relay, "relay")):
            thread = threading.Thread(target=target, name=f"cosmos-smpp-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.client.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        self._answers.shutdown(wait=True)

    # --- submits of processes without a bind ----------------------------------------------------
    def relay_send(self, to: str, sender: str, text: str) -> Outcome | None:
        """Hand a submit to a process holding a bind; None when no process holds one."""
        try:
            slots = self.relay.held_slots()
            if not slots:
                return None
            wait_s = 2 * self.settings.smpp_response_timeout_s + 3
            answer = self.relay.request(random.choice(slots), {"to": to, "sender": sender, "text": text}, wait_s)  # noqa: S311
        except TimeoutError as exc:
            return ambiguous("no_answer", 0, f"handed to another process's bind: {exc}")
        except redis.RedisError as exc:
            return ambiguous("relay_error", 0, f"handing the submit to another process's bind failed: {exc}")
        if answer is None:
            return not_sent("not_bound", "the bind holder did not take the submit in time", retry_after_s=1.0)
        return Outcome(**answer)

    def _serve_relay(self) -> None:
        """While this process holds a bind, take the submits other processes hand to its slot."""
        while not self._stop.is_set():
            slot = self.client.slot
            if slot is None or self.client.session is None:
                self._stop.wait(0.2)
                continue
            try:
                request = self.relay_served.take(slot)
            except redis.RedisError as exc:
                log.warning("relayed submits not read this round", error=str(exc))
                self._stop.wait(1.0)
                continue
            if request is not None:
                self._submit_relayed(request)

    def _submit_relayed(self, request: dict[str, Any]) -> None:
        rid = str(request["rid"])
        future = self.client.submit_future(str(request["to"]), str(request["sender"]), str(request["text"]))
        if future is None:  # the bind ended between the read and now
            self._answers.submit(self._answer, rid, not_sent("not_bound", "the bind ended", retry_after_s=1.0))
            return
        future.add_done_callback(lambda done: self._answers.submit(self._answer, rid, _result(done)))

    def _answer(self, rid: str, outcome: Outcome) -> None:
        try:
            self.relay_served.answer(rid, asdict(outcome))
        except redis.RedisError as exc:  # the sender's wait ends: it counts the attempt as ambiguous
            log.warning("answer to a relayed submit lost", error=str(exc))

    # --- deliver_sm: recorded before it is answered --------------------------------------------------
    def on_deliver(self, pdu: P.Pdu) -> None:
        """Record a deliver_sm; raising leaves it unanswered, so the SMSC sends it again."""
        what = read_deliver_sm(pdu, self.settings.smpp_default_alphabet)
        if isinstance(what, Receipt):
            self.record_receipt(what)
        else:
            sender = inbound_number(what.sender)
            word = opt_word(what.text)
            self.ledger.record_inbound(sender, inbound_number(what.to), what.text, word)
            if word:
                log.info("inbound opt word applied to the suppression list", word=word)

    def record_receipt(self, receipt: Receipt) -> None:
        if not receipt.message_id:
            log.warning("SMPP receipt without a message id; acknowledged and dropped")
            return
        status = receipt.status
        if status is None:
            log.info("SMPP receipt of a non-final state noted", stat=receipt.stat)
            return
        mid = normalise_id(receipt.message_id, self.settings.smpp_id_format, from_receipt=True)
        stamp = _receipt_time(receipt.done)
        matched = self.ledger.match_smpp_receipt(mid, status, stamp)
        if matched is None:
            log.info("SMPP receipt before its acceptance is recorded; kept", message_id=mid)
            return
        job, to = matched
        self._apply(job, to, mid, status, stamp)

    def _apply(self, job: str, to: str, mid: str, status: str, stamp: str) -> None:
        result = self.ledger.apply_receipt(
            job, to=to, status=status, message_id=mid, price=self.settings.smpp_price or 0.0, timestamp=stamp
        )
        log.debug("SMPP receipt", job_id=job, message_id=mid, status=status, result=result)

    def _match_kept_receipts(self) -> None:
        while not self._stop.wait(EARLY_RECEIPT_POLL_S):
            try:
                for job, to, mid, status, stamp in self.ledger.due_smpp_receipts():
                    self._apply(job, to, mid, status, stamp)
                    self.ledger.smpp_receipt_done(mid)
            except Exception as exc:  # noqa: BLE001  a Redis blip: the next round tries again
                log.warning("kept SMPP receipts not matched this round", error=str(exc))


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})


def opt_word(text: str) -> str:
    """`opt_out` or `opt_in` for a text that is one such word (any case, blanks around ignored), else ''."""
    word = text.strip().upper()
    return "opt_out" if word in OPT_OUT_WORDS else "opt_in" if word in OPT_IN_WORDS else ""


def inbound_number(address: str) -> str:
    """A sender's number in the `to` form: `+` and spaces removed."""
    return address.replace("+", "").replace(" ", "")


def _result(future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001  a submit that failed inside the session: unknown
        return ambiguous("no_answer", 0, f"submit failed: {exc}")


def _receipt_time(done: str) -> str:
    """The receipt's `done date` (YYMMDDhhmm[ss]) as ISO 8601 UTC, else now."""
    try:
        fmt = "%y%m%d%H%M%S" if len(done) == 12 else "%y%m%d%H%M"
        return datetime.strptime(done, fmt).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    except ValueError:
        return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
