"""Errors of cosmos-sms, one root for all.

    CosmosSmsError
    ├── InvalidMessage (also ValueError)   a message breaks a COSMOS rule; nothing enqueued
    ├── IdempotencyConflict                same idempotency key, different message
    └── EnqueueFailed                      Redis could not take the job in time
"""

from __future__ import annotations


class CosmosSmsError(Exception):
    """Root of every error cosmos-sms raises on purpose."""


class InvalidMessage(CosmosSmsError, ValueError):
    """A message breaks a COSMOS rule; `.status` is COSMOS's name for it."""

    def __init__(self, status: str, field: str, reason: str, index: int | None = None):
        self.status = status
        self.field = field
        self.reason = reason
        self.index = index
        where = f"message {index}: " if index is not None else ""
        super().__init__(f"{status}: {where}{field} {reason}")

    def at(self, index: int) -> "InvalidMessage":
        """The same error, naming the message's position in a bulk call."""
        return InvalidMessage(self.status, self.field, self.reason, index)


class IdempotencyConflict(CosmosSmsError):
    """The idempotency key is already used by a different message (`.job_id` names it)."""

    def __init__(self, key: str, job_id: str):
        self.key = key
        self.job_id = job_id
        super().__init__(f"idempotency key {key!r} is already used by job {job_id} for a different message")


class EnqueueFailed(CosmosSmsError):
    """Redis could not durably take the job within the enqueue bound; nothing was queued."""
