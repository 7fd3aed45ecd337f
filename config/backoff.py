"""The one backoff formula: exponential from a base, plus jitter, capped. Used by the retry policy
and by the lease bound that must cover a whole burst of attempts."""

from __future__ import annotations


def backoff_s(attempt: int, base_s: float, cap_s: float, jitter_s: float = 0.0) -> float:
    """Seconds to wait after attempt number `attempt` (1-based): base * 2^(attempt-1) + jitter, capped."""
    return min(base_s * 2.0 ** max(0, attempt - 1) + jitter_s, cap_s)


def backoff_bound_s(attempt: int, base_s: float, cap_s: float) -> float:
    """The longest `backoff_s` can be after `attempt` (jitter is at most one base)."""
    return backoff_s(attempt, base_s, cap_s, jitter_s=base_s)
