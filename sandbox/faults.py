"""What the sandbox answers besides "ok": status table, magic numbers, scripts, outage, random faults, limits."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

STATUS_HTTP: dict[str, int] = {
    "ok": 200,
    "invalid_to": 400,
    "invalid_from": 400,
    "invalid_text": 400,
    "invalid_callback": 400,
    "invalid_json": 400,
    "failed": 400,
    "spam": 400,
    "blacklist": 400,
    "unauthorized": 401,
    "timeout": 408,
    "large_request": 413,
    "internal_error": 500,
}
"""Every status COSMOS answers, with its HTTP code, exactly as the spec lists them."""

ACCEPT_NOT_DELIVERED = "accept_not_delivered"
"""Internal verb of a magic number: accepted, but its receipt says not_delivered."""

MAGIC_NUMBERS: dict[str, str] = {
    "099900000000001": "failed",
    "099900000000002": "spam",
    "099900000000003": "blacklist",
    "099900000000004": "internal_error",
    "099900000000005": "timeout",
    "099900000000007": ACCEPT_NOT_DELIVERED,
}
"""Recipients that always get the same answer (unless a script for them says otherwise).

No number answers `unauthorized`: in COSMOS it means the account's credentials are wrong, true of
every message at once. The sandbox makes it an account-level fault: wrong credentials, or the
`unauthorized` window (`POST /_sandbox/unauthorized {"seconds": N}`, `--unauthorized-s N`).
"""

RANDOM_FAULTS = ("internal_error", "timeout", "drop")
"""What `fault_rate` picks from, evenly; none of them accepts the message."""


@dataclass(frozen=True)
class Outcome:
    """One decided outcome: a COSMOS status verb, or a fault verb with its argument."""

    verb: str
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"stall {self.seconds:g}" if self.verb == "stall" else self.verb


def parse_outcome(text: object) -> Outcome:
    """Read one script entry ("ok", "timeout", "drop", "accept_drop", "stall 2.5"); ValueError if unknown."""
    if not isinstance(text, str):
        raise ValueError(f"outcome must be a string, got {text!r}")  # noqa: TRY004
    parts = text.split()
    if len(parts) == 1 and (parts[0] in STATUS_HTTP or parts[0] in ("drop", "accept_drop")):
        return Outcome(parts[0])
    if len(parts) == 2 and parts[0] == "stall":
        try:
            seconds = float(parts[1])
        except ValueError:
            seconds = -1.0
        if math.isfinite(seconds) and 0 <= seconds <= 3600:
            return Outcome("stall", seconds)
    known = ", ".join([*STATUS_HTTP, "drop", "accept_drop", "stall N"])
    raise ValueError(f"unknown outcome {text!r}; known: {known}")


@dataclass
class FaultSettings:
    """The knobs changeable at run time through POST /_sandbox/faults."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    price: float = 0.0
    receipt_delay_s: float = 0.2
    not_delivered_share: float = 0.0
    throughput_limit: int = 0

    # (lowest, highest) allowed for each knob; shares are probabilities.
    _LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "latency_ms": (0.0, 600_000.0),
        "jitter_ms": (0.0, 600_000.0),
        "fault_rate": (0.0, 1.0),
        "price": (0.0, 1_000_000.0),
        "receipt_delay_s": (0.0, 3600.0),
        "not_delivered_share": (0.0, 1.0),
        "throughput_limit": (0, 10_000_000),
    }

    def as_dict(self) -> dict:
        return asdict(self)

    def update(self, changes: object) -> None:
        """Apply a subset of the knobs, all or nothing; ValueError names the first bad one."""
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object of settings")  # noqa: TRY004
        names = {f.name for f in fields(self)}
        checked = {}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(names))}")
            checked[name] = self._check(name, value)
        for name, value in checked.items():
            setattr(self, name, value)

    def _check(self, name: str, value: object) -> float | int:
        low, high = self._LIMITS[name]
        integral = name == "throughput_limit"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number")  # noqa: TRY004
        if integral and value != int(value):
            raise ValueError(f"{name} must be a whole number")
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name} must be between {low} and {high}")
        return int(value) if integral else float(value)


class Scripts:
    """Per-recipient queues of outcomes; each request for the number consumes the next one."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Outcome]] = {}

    def set(self, to: str, outcomes: list[Outcome]) -> None:
        """Replace the script of `to` (an empty list removes it)."""
        if outcomes:
            self._queues[to] = deque(outcomes)
        else:
            self._queues.pop(to, None)

    def next_for(self, to: str) -> Outcome | None:
        queue = self._queues.get(to)
        if queue is None:
            return None
        outcome = queue.popleft()
        if not queue:
            del self._queues[to]
        return outcome

    def pending(self) -> dict[str, list[str]]:
        return {to: [str(o) for o in queue] for to, queue in self._queues.items()}

    def clear(self) -> None:
        self._queues.clear()


class Window:
    """A switch that stays on for a number of seconds: while on, every SMS request gets one answer."""

    def __init__(self) -> None:
        self._until = 0.0

    def start(self, seconds: float) -> None:
        self._until = time.monotonic() + seconds if seconds > 0 else 0.0

    def active(self, now: float) -> bool:
        return now < self._until

    def remaining_s(self) -> float:
        return max(0.0, round(self._until - time.monotonic(), 3))


Outage = Window
"""The outage: every authorized SMS request answers 500 internal_error while it lasts."""
Unauthorized = Window
"""The account-level 401: every SMS request answers unauthorized while it lasts, whatever its credentials."""


class ThroughputLimiter:
    """Per-account limit over a sliding one-second window; requests refused do not count."""

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}

    def admit(self, account: str, limit: int, now: float) -> bool:
        window = self._windows.get(account)
        if window is None:
            window = self._windows[account] = deque()
        horizon = now - 1.0
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def clear(self) -> None:
        self._windows.clear()


def random_fault(rng: random.Random, fault_rate: float) -> Outcome | None:
    """A transient fault with probability `fault_rate`, split evenly over RANDOM_FAULTS."""
    if fault_rate <= 0 or rng.random() >= fault_rate:
        return None
    return Outcome(rng.choice(RANDOM_FAULTS))
