"""The retry policy of deliveries: the one backoff formula with random jitter, in-call and between bursts."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from config.backoff import backoff_s
from config.settings import Settings


def backoff(settings: Settings, rng: Callable[[], float] = random.random) -> Callable[[Any], float]:
    """A tenacity `wait`: the wait after attempt n of a burst."""
    base, cap = settings.retry_backoff_base_s, settings.retry_backoff_max_s
    return lambda state: backoff_s(state.attempt_number, base, cap, rng() * base)


def delay_after(settings: Settings, attempts_made: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next burst of a job that has made `attempts_made` attempts."""
    base = settings.retry_backoff_base_s
    return backoff_s(max(1, attempts_made), base, settings.retry_backoff_max_s, rng() * base)
