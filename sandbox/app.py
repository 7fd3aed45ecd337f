"""The sandbox's aiohttp application: COSMOS's POST /v1.0/sms/ and the /_sandbox/ control endpoints."""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import random
import string
import time

from aiohttp import web

from config.errors import InvalidMessage
from cosmos_api.rules import (
    MAX_BODY_BYTES,
    check_callback,
    check_from,
    check_text,
    check_to,
)
from sandbox.config import SandboxConfig
from sandbox.faults import (
    ACCEPT_NOT_DELIVERED,
    MAGIC_NUMBERS,
    STATUS_HTTP,
    Outage,
    Outcome,
    Scripts,
    ThroughputLimiter,
    Unauthorized,
    parse_outcome,
    random_fault,
)
from sandbox.inspection import MESSAGE_LOG_SIZE, RECEIPT_LOG_SIZE, REQUEST_LOG_SIZE, Inspection, last
from sandbox.receipts import ReceiptSender

CLIENT_MAX_SIZE = 1024 * 1024
"""Bodies up to this many bytes are read and answered large_request; aiohttp refuses bigger ones itself."""

_JSON = "application/json"
_ERROR_BODIES = {status: json.dumps({"status": status}).encode() for status in STATUS_HTTP}
# Outcomes that accept the message (count it, give it an id, send its receipt).
_ACCEPTING = frozenset({"ok", ACCEPT_NOT_DELIVERED, "accept_drop", "stall"})
_NOT_DELIVERED_NUMBER = next(n for n, verb in MAGIC_NUMBERS.items() if verb == ACCEPT_NOT_DELIVERED)
_ID_SPACE = 10**11
"""message_id carries 11 digits (5 + 6); the counter wraps after that many acceptances."""


SANDBOX_KEY: web.AppKey[Sandbox] = web.AppKey("sandbox")
"""Where the application keeps its Sandbox (tests and embedders read it from there)."""


class ControlError(ValueError):
    """Bad input to a /_sandbox/ endpoint; answered 400 with a JSON error."""


class Sandbox:
    """The simulated COSMOS account: one set of credentials, settings, scripts and counters."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.faults = config.faults
        self._key = config.api_key.encode()
        self._secret = config.api_secret.encode()
        self.rng = random.Random(config.seed)
        self.scripts = Scripts()
        self.outage = Outage()
        self.unauthorized = Unauthorized()
        self.unauthorized.start(config.unauthorized_s)
        self.limiter = ThroughputLimiter()
        self.inspection = Inspection()
        self.receipts = ReceiptSender(self.inspection, config.receipt_retries)
        # Ids must stay unique across resets and, very likely, across restarts: random
        # letters and a counter starting from the clock, independent of --seed.
        system = random.SystemRandom()
        self._id_letters = system.choice(string.ascii_uppercase) + system.choice(string.ascii_lowercase)
        self._id_next = int(time.time() * 1000) % _ID_SPACE

    # --- the COSMOS API -------------------------------------------------------------------

    async def send_sms(self, request: web.Request) -> web.StreamResponse:
        """POST /v1.0/sms/: validate, decide the outcome, wait the latency, answer (or not)."""
        now = time.time()
        self.inspection.count_request(now)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raw = None
        body: object = None
        to = None
        auth_ok = False
        source = "rules"
        if raw is None or len(raw) > MAX_BODY_BYTES:
            outcome = Outcome("large_request")
        else:
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):  # also bad UTF-8 and absurd nesting
                body = None
            if not isinstance(body, dict):
                outcome = Outcome("invalid_json")
            else:
                to = body.get("to")
                auth_ok = self._authorized(body.get("api_key"), body.get("api_secret"))
                if auth_ok and self.unauthorized.active(time.monotonic()):
                    # The unauthorized window refuses the account, however right the credentials are.
                    auth_ok, source = False, "unauthorized"
                if not auth_ok:
                    outcome = Outcome("unauthorized")
                else:
                    try:
                        number = check_to(to)
                        check_from(body.get("from"), field="from")
                        check_text(body.get("text"))
                        check_callback(body.get("callback"))
                    except InvalidMessage as exc:
                        outcome = Outcome(exc.status)
                    except UnicodeEncodeError:  # a lone surrogate (\ud800 in the JSON) has no UCS-2 form
                        outcome = Outcome("invalid_text")
                    else:
                        outcome, source = self._choose(number, body["api_key"])
        return await self._answer(request, now, outcome, source, body, to, auth_ok)

    def _authorized(self, key: object, secret: object) -> bool:
        if not isinstance(key, str) or not isinstance(secret, str):
            return False
        # Both comparisons always run: the answer time does not tell which one failed.
        # surrogatepass: a lone surrogate in JSON is a wrong credential, not a crash.
        key_ok = hmac.compare_digest(key.encode("utf-8", "surrogatepass"), self._key)
        secret_ok = hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), self._secret)
        return key_ok and secret_ok

    def _choose(self, to: str, account: str) -> tuple[Outcome, str]:
        """The outcome of a valid, authorized request, in the documented order of precedence."""
        scripted = self.scripts.next_for(to)
        if scripted is not None:
            return scripted, "script"
        magic = MAGIC_NUMBERS.get(to)
        if magic is not None:
            return Outcome(magic), "magic"
        if self.outage.active(time.monotonic()):
            return Outcome("internal_error"), "outage"
        fault = random_fault(self.rng, self.faults.fault_rate)
        if fault is not None:
            return fault, "fault"
        limit = self.faults.throughput_limit
        if limit and not self.limiter.admit(account, limit, time.monotonic()):
            return Outcome("spam"), "throughput"
        return Outcome("ok"), "normal"

    async def _answer(
        self,
        request: web.Request,
        now: float,
        outcome: Outcome,
        source: str,
        body: object,
        to: object,
        auth_ok: bool,
    ) -> web.StreamResponse:
        verb = outcome.verb
        message = None
        if verb in _ACCEPTING and isinstance(body, dict):  # only a valid JSON object is ever accepted
            message = self._accept(body, verb == ACCEPT_NOT_DELIVERED)
        dropped = verb in ("drop", "accept_drop")
        if dropped:
            status, http = None, None
            self.inspection.drops += 1
        elif message is not None:
            status, http = "ok", 200
        else:
            status, http = verb, STATUS_HTTP[verb]
        delay = self._latency_s() + outcome.seconds
        self.inspection.log_request(
            {
                "at": round(now, 3),
                "to": to if isinstance(to, str) else None,
                "http": http,
                "status": status,
                "outcome": str(outcome),
                "source": source,
                "latency_ms": round(delay * 1000, 1),
                "auth_ok": auth_ok,
            }
        )
        if delay > 0:
            await asyncio.sleep(delay)
        if dropped:
            transport = request.transport
            if transport is not None:
                # No response bytes at all: aiohttp's write to the closing transport is
                # treated as a premature client disconnect and stays silent.
                transport.close()
            return web.Response()
        if message is not None:
            payload = {"status": "ok", "message_id": message["message_id"], "price": message["price"]}
            return web.Response(body=json.dumps(payload).encode(), status=200, content_type=_JSON)
        return web.Response(body=_ERROR_BODIES[verb], status=STATUS_HTTP[verb], content_type=_JSON)

    def _latency_s(self) -> float:
        faults = self.faults
        delay = faults.latency_ms
        if faults.jitter_ms > 0:
            delay += self.rng.uniform(0, faults.jitter_ms)
        return delay / 1000

    def _accept(self, body: dict, force_not_delivered: bool) -> dict:
        """Count the message as accepted, give it an id, and schedule its receipt."""
        n = self._id_next
        self._id_next = (n + 1) % _ID_SPACE
        message = {
            "to": body["to"],
            "from": body["from"],
            "text": body["text"],
            "callback": body.get("callback"),
            "message_id": f"{self._id_letters}_{n // 1_000_000:05d}-{n % 1_000_000:06d}",
            "price": self.faults.price,
            "at": round(time.time(), 3),
        }
        self.inspection.count_accepted(message)
        if message["callback"] is not None:
            share = self.faults.not_delivered_share
            not_delivered = (
                force_not_delivered
                or message["to"] == _NOT_DELIVERED_NUMBER
                or (share > 0 and self.rng.random() < share)
            )
            status = "not_delivered" if not_delivered else "delivered"
            self.receipts.schedule(message, status, self.faults.receipt_delay_s)
        return message

    # --- /_sandbox/ control and inspection ------------------------------------------------

    async def get_stats(self, request: web.Request) -> web.Response:
        stats = self.inspection.stats()
        stats["receipts_pending"] = self.receipts.pending
        return _ok(stats)

    async def get_accepted(self, request: web.Request) -> web.Response:
        query = request.query
        return _ok(self.inspection.accepted_counts(query.get("to"), query.get("text")))

    async def get_messages(self, request: web.Request) -> web.Response:
        limit = _limit(request, MESSAGE_LOG_SIZE)
        return _ok({"messages": last(self.inspection.message_log, limit)})

    async def get_requests(self, request: web.Request) -> web.Response:
        limit = _limit(request, REQUEST_LOG_SIZE)
        return _ok({"requests": last(self.inspection.request_log, limit)})

    async def get_receipts(self, request: web.Request) -> web.Response:
        limit = _limit(request, RECEIPT_LOG_SIZE)
        return _ok({"receipts": last(self.inspection.receipt_log, limit)})

    async def get_faults(self, request: web.Request) -> web.Response:
        return _ok(self.faults.as_dict())

    async def post_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults.update(await _json_object(request))
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        return _ok(self.faults.as_dict())

    async def get_script(self, request: web.Request) -> web.Response:
        return _ok({"scripts": self.scripts.pending()})

    async def post_script(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        try:
            to = check_to(data.get("to"))
        except InvalidMessage:
            raise ControlError("to must be a valid COSMOS number (a 0 and 14 digits)") from None
        outcomes = data.get("outcomes")
        if not isinstance(outcomes, list):
            raise ControlError("outcomes must be a list of strings")
        try:
            parsed = [parse_outcome(o) for o in outcomes]
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        self.scripts.set(to, parsed)
        return _ok({"to": to, "outcomes": [str(o) for o in parsed]})

    async def get_outage(self, request: web.Request) -> web.Response:
        return _ok({"remaining_s": self.outage.remaining_s()})

    async def post_outage(self, request: web.Request) -> web.Response:
        seconds = (await _json_object(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86_400:
            raise ControlError("seconds must be a number from 0 to 86400 (0 ends the outage)")
        self.outage.start(float(seconds))
        return _ok({"remaining_s": self.outage.remaining_s()})

    async def get_unauthorized(self, request: web.Request) -> web.Response:
        return _ok({"remaining_s": self.unauthorized.remaining_s()})

    async def post_unauthorized(self, request: web.Request) -> web.Response:
        seconds = (await _json_object(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86_400:
            raise ControlError("seconds must be a number from 0 to 86400 (0 ends the unauthorized window)")
        self.unauthorized.start(float(seconds))
        return _ok({"remaining_s": self.unauthorized.remaining_s()})

    async def post_reset(self, request: web.Request) -> web.Response:
        # A fresh account, not a new configuration: fault settings stay as they are.
        self.receipts.cancel_pending()
        self.inspection.reset()
        self.scripts.clear()
        self.outage.start(0)
        self.unauthorized.start(0)
        self.limiter.clear()
        return _ok({"reset": True})


def _ok(data: dict) -> web.Response:
    return web.json_response(data, content_type=_JSON)


def _limit(request: web.Request, maximum: int) -> int:
    raw = request.query.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        raise ControlError(f"limit must be a whole number, got {raw!r}") from None
    if limit < 1:
        raise ControlError("limit must be at least 1")
    return min(limit, maximum)


async def _json_object(request: web.Request) -> dict:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ControlError("body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _control(handler):
    """Answer a ControlError as 400 {"error": ...} instead of aiohttp's plain-text 500."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    return wrapped


def build_app(config: SandboxConfig) -> web.Application:
    """The aiohttp application of one sandbox; its Sandbox is `app[SANDBOX_KEY]`."""
    sandbox = Sandbox(config)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app[SANDBOX_KEY] = sandbox
    app.router.add_post("/v1.0/sms/", sandbox.send_sms)
    app.router.add_post("/v1.0/sms", sandbox.send_sms)
    routes = [
        ("GET", "stats", sandbox.get_stats),
        ("GET", "accepted", sandbox.get_accepted),
        ("GET", "messages", sandbox.get_messages),
        ("GET", "requests", sandbox.get_requests),
        ("GET", "receipts", sandbox.get_receipts),
        ("GET", "faults", sandbox.get_faults),
        ("POST", "faults", sandbox.post_faults),
        ("GET", "script", sandbox.get_script),
        ("POST", "script", sandbox.post_script),
        ("GET", "outage", sandbox.get_outage),
        ("POST", "outage", sandbox.post_outage),
        ("GET", "unauthorized", sandbox.get_unauthorized),
        ("POST", "unauthorized", sandbox.post_unauthorized),
        ("POST", "reset", sandbox.post_reset),
    ]
    for method, name, handler in routes:
        app.router.add_route(method, f"/_sandbox/{name}", _control(handler))

    async def start_receipts(_app: web.Application) -> None:
        await sandbox.receipts.start()

    async def stop_receipts(_app: web.Application) -> None:
        await sandbox.receipts.close()

    app.on_startup.append(start_receipts)
    app.on_cleanup.append(stop_receipts)
    if config.smpp_port is not None:
        from sandbox.smsc import Smsc
        from sandbox.smsc_control import add_smsc

        add_smsc(app, Smsc(config.api_key, config.api_secret, config.seed), config.host, config.smpp_port)
    return app
