"""Module-level producer functions over one default `SmsProducer`.

Global state department: the default producer reads the environment on first use.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping

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


def send_sms(to: str, sender: str, text: str, callback: str | None = None,
             idempotency_key: str | None = None, expires_in: int | None = None) -> str:
    """Enqueue one SMS; returns its job id once it is durably recorded and queued."""
    return default_producer().send_sms(to, sender, text, callback, idempotency_key, expires_in)


def send_bulk(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """Enqueue many SMS in the bulk lane; all or none; returns job ids in order."""
    return default_producer().send_bulk(messages)


def get_status(job_id: str) -> dict | None:
    """The outcome record of a job, or None if unknown."""
    return default_producer().get_status(job_id)


def cancel(job_id: str) -> bool:
    """Cancel a job that has not been sent yet; returns whether it was cancelled."""
    return default_producer().cancel(job_id)
