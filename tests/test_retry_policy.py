"""The one backoff policy: exponential with jitter, capped, the same in-call and between bursts."""

from __future__ import annotations

from worker.retry_policy import delay_after


def test_delay_grows_exponentially_with_jitter_and_is_capped(settings_for):
    settings = settings_for(COSMOS_RETRY_BACKOFF_BASE_S="1", COSMOS_RETRY_BACKOFF_MAX_S="30")
    for attempts, low in ((1, 1), (2, 2), (3, 4), (4, 8)):
        delays = [delay_after(settings, attempts) for _ in range(50)]
        assert all(low <= d <= low + 1 for d in delays)  # base * 2^(n-1) plus up to one base of jitter
        assert len(set(delays)) > 1  # jittered
    assert all(delay_after(settings, 20) <= 30 for _ in range(50))
