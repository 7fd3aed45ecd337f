"""The one backoff policy: tenacity's exponential wait with jitter, in-call and between bursts."""

from __future__ import annotations

from types import SimpleNamespace

from tenacity import wait_exponential_jitter

from config.settings import Settings


def backoff(settings: Settings):
    """Wait before attempt n+1 after n attempts: base * 2^(n-1), jittered, capped."""
    return wait_exponential_jitter(initial=settings.retry_backoff_base_s, max=settings.retry_backoff_max_s,
                                   jitter=settings.retry_backoff_base_s)


def delay_after(settings: Settings, attempts_made: int) -> float:
    """Seconds until the next burst of a job that has made `attempts_made` attempts."""
    return backoff(settings)(SimpleNamespace(attempt_number=max(1, attempts_made)))
