"""The forwarder: POST final outcomes to applications' own callbacks, signed, retried, never stuck.

Each worker process runs one `Forwarder` (`start_forwarder(ctx)` when the worker is ready,
`.stop()` at shutdown): a dispatcher thread claims due forwards (ledger/forwards.py) and a
pool of its own sends them, so forwarding never takes a delivery thread. Per POST:

- signed per Standard Webhooks with `COSMOS_APP_WEBHOOK_SECRET` (`webhook-id` is the
  intent's, the same on every retry; `webhook-timestamp` is the attempt's); unsigned, with a
  warning at start-up, when the secret is unset;
- short timeouts (`COSMOS_FORWARD_TIMEOUT_S`) and a total deadline (their sum) that even an
  answer dripping byte by byte cannot stretch; redirects not followed (a 3xx is a failure);
  the body never read beyond its headers;
- anything but 2xx, or no answer, is retried with exponential backoff and jitter for
  `COSMOS_FORWARD_MAX_AGE_S` (24 h), then given up into the failed list the CLI shows.

A destination (host:port) that keeps failing gets a breaker of its own: while it is open,
its forwards are rescheduled without a request; and a destination never holds more than half
the pool (a quarter once failing), so a dead or hanging application never slows forwards to others.

`python -m worker.forwarding` runs a forwarder alone (tests, or a dedicated process).
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
import structlog
from standardwebhooks.webhooks import Webhook

from config.backoff import backoff_s
from config.redis_client import redis_client
from config.settings import Settings
from ledger.forwards import MAX_STEP, Forward, Forwards
from worker.forward_session import (
    DESTINATION_REFUSED,
    DeadlinePassed,
    DestinationRefused,
    DestinationRule,
    forward_session,
    post_within,
)

log = structlog.get_logger("cosmos.forwarding")

MAX_TRACKED_DESTINATIONS = 10_000
"""Breaker states kept at most; healthy destinations are forgotten first."""

USER_AGENT = "cosmos-sms-forwarder"
HELD_BACK_POLLS = 4
"""After a round that held every claimed forward back, the next claim waits for a POST to end, or this
many poll intervals (forwards to other destinations wait no longer than that)."""


def destination(url: str) -> str:
    """The breaker's key of a URL: host:port."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: the POST fails on its own, keyed apart
        port = 0
    return f"{(parts.hostname or '').lower()}:{port}"


@dataclass
class _Destination:
    failures: int = 0
    opens: int = 0
    open_until: float = 0.0
    in_flight: int = 0


class DestinationBreakers:
    """Per-destination circuit breakers and in-flight counts, in this process (thread-safe)."""

    def __init__(self, threshold: int, open_s: float, max_open_s: float, threads: int, busy_s: float) -> None:
        self.threshold, self.open_s, self.max_open_s = threshold, open_s, max(open_s, max_open_s)
        self.busy_s = busy_s
        """How long a forward waits when its destination has its share of threads busy: one POST's
        deadline, by which one of them is free (no attempt counted)."""
        # Threads one destination may hold: half the pool while healthy, a quarter once failing.
        self.healthy_share, self.failing_share = max(1, threads // 2), max(1, threads // 4)
        self._lock = threading.Lock()
        self._states: OrderedDict[str, _Destination] = OrderedDict()

    def acquire(self, dest: str, now: float) -> float:
        """0 and a thread taken for `dest`, or how long its forwards should wait (breaker open, or busy)."""
        with self._lock:
            state = self._states.get(dest)
            if state is None:
                state = self._states[dest] = _Destination()
                self._forget_some()
            if state.open_until > now:
                return state.open_until - now
            # Half-open after a breaker opened: one probe at a time.
            if state.failures >= self.threshold:
                limit = 1
            else:
                limit = self.failing_share if state.failures else self.healthy_share
            if state.in_flight >= limit:
                return self.busy_s
            state.in_flight += 1
            return 0.0

    def release(self, dest: str, ok: bool, now: float) -> None:
        with self._lock:
            state = self._states.setdefault(dest, _Destination())
            state.in_flight = max(0, state.in_flight - 1)
            if ok:
                state.failures, state.opens, state.open_until = 0, 0, 0.0
                return
            state.failures += 1
            if state.failures >= self.threshold:
                state.opens += 1
                state.open_until = now + min(self.open_s * 2 ** (state.opens - 1), self.max_open_s)
                if state.opens == 1:  # said once per outage, not on every failed probe
                    log.warning(
                        "forward destination failing: breaker open",
                        destination=dest,
                        failures=state.failures,
                        open_s=round(state.open_until - now, 2),
                    )

    def cancel(self, dest: str) -> None:
        """Give back a thread taken by `acquire` without a POST (nothing learnt about the destination)."""
        with self._lock:
            state = self._states.get(dest)
            if state is not None:
                state.in_flight = max(0, state.in_flight - 1)

    def is_open(self, dest: str, now: float | None = None) -> bool:
        with self._lock:
            state = self._states.get(dest)
            return bool(state and state.open_until > (time.time() if now is None else now))

    def _forget_some(self) -> None:
        while len(self._states) > MAX_TRACKED_DESTINATIONS:
            for key, state in self._states.items():
                if state.in_flight == 0 and state.failures == 0:
                    del self._states[key]
                    break
            else:
                self._states.popitem(last=False)


class Forwarder:
    """Drains the due forwards of one prefix with a thread pool of its own."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or redis_client(settings, "worker", max_connections=settings.forward_threads + 8)
        self.forwards = Forwards(self.redis, settings)
        self.breakers = DestinationBreakers(
            settings.forward_breaker_threshold,
            settings.forward_breaker_open_s,
            settings.forward_backoff_max_s,
            threads=settings.forward_threads,
            busy_s=settings.forward_connect_timeout_s + settings.forward_timeout_s,
        )
        secret = settings.app_webhook_secret
        self.webhook = Webhook(secret.get_secret_value()) if secret else None
        self.session = forward_session(settings.forward_threads)
        self.rule = DestinationRule(deny_private=settings.forward_deny_private)
        # URLs the operator configured are trusted; every other destination came with a message.
        self.operator_urls = {u for u in (settings.webhook_url, getattr(settings, "inbound_url", None)) if u}
        self._free = threading.Semaphore(settings.forward_threads)
        self._stop = threading.Event()
        self._freed = threading.Event()
        """Set when a POST ends (a thread, maybe of a busy destination, is free again)."""
        self._held: list[tuple[str, float]] = []
        """Claimed forwards held back without a request, (fwd_id, delay_s): the next claim gives them back."""
        self._held_back = False
        self._pool: ThreadPoolExecutor | None = None
        self._dispatcher: threading.Thread | None = None

    # Lifecycle -----------------------------------------------------------------------------
    def start(self) -> Forwarder:
        if self.webhook is None and self.settings.webhook_url:  # without it nothing is forwarded
            log.warning("COSMOS_APP_WEBHOOK_SECRET is not set: forwarded callbacks are sent unsigned")
        self._pool = ThreadPoolExecutor(self.settings.forward_threads, thread_name_prefix="cosmos-forward")
        self._dispatcher = threading.Thread(target=self._run, name="cosmos-forward-dispatch", daemon=True)
        self._dispatcher.start()
        log.info("forwarder started", threads=self.settings.forward_threads)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait for POSTs in flight (each bounded by the timeouts)."""
        self._stop.set()
        self._freed.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.session.close()

    # Dispatch ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                dispatched = self.dispatch_once()
            except redis.RedisError as exc:
                log.warning("forwarder: Redis not reachable; retrying", error=str(exc))
                dispatched = 0
            if self._held_back:
                # Forwards wait for a busy destination: claim again when a POST ends, not at once
                # (the next claim would find the same destination at the head of the due set).
                self._freed.wait(self.settings.forward_poll_s * HELD_BACK_POLLS)
                self._freed.clear()
            elif dispatched == 0:
                self._stop.wait(self.settings.forward_poll_s)

    def dispatch_once(self) -> int:
        """Claim what the free threads can send now and hand it to them; returns how many were sent off.

        Forwards held back (their destination busy or its breaker open) wait here for the next claim,
        which pushes them back in the same call: a slow destination costs a round one call, not one per
        forward it holds back. The claim's grace covers them meanwhile.
        """
        if not self._free.acquire(timeout=self.settings.forward_poll_s):
            if self._held:
                self._claim(0)  # every thread busy: only give the held ones back
            return 0
        free = 1
        while free < MAX_STEP and self._free.acquire(blocking=False):
            free += 1
        claimed: list[Forward] = []
        try:
            claimed = self._claim(free)
        finally:
            for _ in range(free - len(claimed)):
                self._free.release()
        for forward in claimed:
            wait_s = self._dispatch(forward)  # each one sent off keeps its thread permit
            if wait_s is not None:
                self._held.append((forward.fwd_id, wait_s + random.uniform(0, 0.1 + wait_s / 10)))
                self._free.release()
        self._held_back = bool(self._held)
        return len(claimed) - len(self._held)

    def _claim(self, limit: int) -> list[Forward]:
        held, self._held = self._held, []
        try:
            return self.forwards.claim(limit, held)
        except redis.RedisError:
            self._held = held  # given back with the next claim, or by their claim's grace
            raise

    def _dispatch(self, forward: Forward) -> float | None:
        """Send `forward` off on a pool thread (None), or say how long it must wait without a request."""
        dest = destination(forward.url)
        wait_s = self.breakers.acquire(dest, time.time())
        if wait_s > 0:
            return wait_s  # the breaker is open, or the destination has its share
        try:
            assert self._pool is not None
            self._pool.submit(self._deliver, forward, dest)
        except RuntimeError:  # the pool is shutting down: its claim's grace brings it back
            self.breakers.cancel(dest)
            self._free.release()
        return None

    # One POST ------------------------------------------------------------------------------
    def _deliver(self, forward: Forward, dest: str) -> None:
        ok: bool | None = False
        try:
            error = self.post(forward)
            ok = error is None
            if ok:
                self.forwards.complete(forward.fwd_id)
                log.info(
                    "forward delivered",
                    fwd_id=forward.fwd_id,
                    job_id=forward.job_id,
                    destination=dest,
                    attempts=forward.attempts + 1,
                )
                return
            if error == DESTINATION_REFUSED:
                # Never to be reached: listed with the failed forwards at once, nothing learnt about it.
                ok = None
                self.forwards.give_up(forward.fwd_id, error)
                log.warning("forward refused: its destination is internal", fwd_id=forward.fwd_id, destination=dest)
                return
            delay = self.retry_delay_s(forward.attempts + 1)
            result = self.forwards.reschedule(forward.fwd_id, delay, error or "")
            if result == "failed":
                log.warning(
                    "forward given up: retry window passed",
                    fwd_id=forward.fwd_id,
                    job_id=forward.job_id,
                    destination=dest,
                    attempts=forward.attempts + 1,
                    error=error,
                )
            else:
                log.info(
                    "forward failed; will retry",
                    fwd_id=forward.fwd_id,
                    destination=dest,
                    error=error,
                    retry_in_s=round(delay, 2),
                )
        except redis.RedisError as exc:
            # Its claim's grace runs out and another try comes: nothing lost.
            log.warning("forwarder: Redis error after a POST", fwd_id=forward.fwd_id, error=str(exc))
        except Exception:  # one bad forward must never stop the pool
            log.exception("forwarder: unexpected error", fwd_id=forward.fwd_id)
        finally:
            if ok is None:
                self.breakers.cancel(dest)
            else:
                self.breakers.release(dest, ok, time.time())
            self._free.release()
            self._freed.set()

    def retry_delay_s(self, attempts_made: int) -> float:
        """Wait before the next POST of a forward that failed `attempts_made` times: the one backoff formula."""
        base = self.settings.forward_backoff_base_s
        return backoff_s(attempts_made, base, self.settings.forward_backoff_max_s, random.uniform(0, base))

    def headers(self, forward: Forward) -> dict[str, str]:
        """Standard Webhooks headers of one attempt: the intent's id, this attempt's time."""
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": forward.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
        }
        if self.webhook is not None:
            headers["webhook-signature"] = self.webhook.sign(forward.webhook_id, now, forward.payload)
        return headers

    def post(self, forward: Forward) -> str | None:
        """POST once; None when answered 2xx, else why not (the last_error shown to operators)."""
        connect_s, read_s = self.settings.forward_connect_timeout_s, self.settings.forward_timeout_s
        try:
            # Each socket operation within its timeout, and the whole request by their sum.
            response = post_within(
                self.session,
                connect_s + read_s,
                forward.url,
                rule=None if forward.url in self.operator_urls else self.rule,
                data=forward.payload.encode("utf-8"),
                headers=self.headers(forward),
                timeout=(connect_s, read_s),
                allow_redirects=False,
                stream=True,
            )
        except DestinationRefused:
            return DESTINATION_REFUSED
        except DeadlinePassed as exc:
            return str(exc)
        except requests.Timeout:
            return f"no answer within {read_s:g} s"
        except requests.ConnectionError as exc:
            return f"connection failed: {type(exc.__cause__ or exc).__name__}"
        except requests.RequestException as exc:
            return f"request failed: {type(exc).__name__}"
        with response:  # the body is never read: a slow one cannot hold the thread
            status = response.status_code
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return f"HTTP {status}: redirect not followed"
        return f"HTTP {status}"


def start_forwarder(ctx: Any) -> Forwarder:
    """Start the forwarder of a worker process (`ctx`: its WorkerContext); call `.stop()` at shutdown."""
    return Forwarder(ctx.settings).start()


def main() -> None:
    """Run a forwarder alone until SIGTERM/SIGINT."""
    import signal

    from config.logging import configure_logging
    from config.settings import load_settings

    settings = load_settings()
    configure_logging(settings)
    forwarder = Forwarder(settings).start()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    forwarder.stop(timeout=10)


if __name__ == "__main__":
    main()
