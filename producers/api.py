"""Module-level producer functions over one default `SmsProducer`.

Global state department: the default producer reads the environment on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from config.settings import load_settings
from producers.producer import SmsProducer

_lock = threading.Lock()
_default: SmsProducer | None = None


def default_producer() -> SmsProducer:
    global _default
    with _lock:
        if _default is None:
            _default = SmsProducer(load_settings())
        return _default


def send_sms(
    to: str,
    sender: str,
    text: str,
    callback: str | None = None,
    idempotency_key: str | None = None,
    expires_in: float | None = None,
    send_at: datetime | str | None = None,
) -> str:
    """Enqueue one SMS; returns its job id once it is durably recorded and queued.

    `send_at` (an aware datetime, or ISO 8601 with an offset) holds it until then.
    """
    return default_producer().send_sms(to, sender, text, callback, idempotency_key, expires_in, send_at)


def send_bulk(messages: Iterable[Mapping[str, Any]], batch_id: str | None = None) -> list[str]:
    """Enqueue many SMS in the bulk lane; returns job ids in order.

    Every message is checked before anything is written; each may carry its own `send_at`. With a
    `batch_id`, repeating the call (after EnqueueFailed, say) records only what is missing and returns
    the same ids.
    """
    return default_producer().send_bulk(messages, batch_id)


def get_batch(batch_id: str) -> dict[str, Any] | None:
    """A batch's `batch_id`, `total`, `states` (count per state) and `created_at`, or None."""
    return default_producer().get_batch(batch_id)


def cancel_batch(batch_id: str) -> int:
    """Cancel every member of a batch not yet sent; returns how many were cancelled."""
    return default_producer().cancel_batch(batch_id)


def get_status(job_id: str) -> dict[str, Any] | None:
    """The outcome record of a job, or None if unknown."""
    return default_producer().get_status(job_id)


def cancel(job_id: str) -> bool:
    """Cancel a job that has not been sent yet; returns whether it was cancelled."""
    return default_producer().cancel(job_id)
