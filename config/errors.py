"""Errors of cosmos-sms, one root for all; this module belongs to no side, so every layer raises them.

CosmosSmsError
├── SettingsError                      a configuration value was refused (names the variable)
├── InvalidMessage (also ValueError)   a message breaks a COSMOS rule; nothing enqueued
├── IdempotencyConflict                same idempotency key (or batch index), different message
└── EnqueueFailed                      Redis could not take the job(s) in time
"""

from __future__ import annotations

from collections.abc import Sequence


class CosmosSmsError(Exception):
    """Root of every error cosmos-sms raises on purpose."""


class SettingsError(CosmosSmsError):
    """A configuration value was refused; the message names the variable."""


class InvalidMessage(CosmosSmsError, ValueError):
    """A message breaks a COSMOS rule; `.status` is COSMOS's name for it, `.field` the argument."""

    def __init__(self, status: str, field: str, reason: str, index: int | None = None):
        self.status = status
        self.field = field
        self.reason = reason
        self.index = index
        where = f"message {index}: " if index is not None else ""
        super().__init__(f"{status}: {where}{field} {reason}")

    def at(self, index: int) -> InvalidMessage:
        """The same error, naming the message's position in a bulk call."""
        return InvalidMessage(self.status, self.field, self.reason, index)


class IdempotencyConflict(CosmosSmsError):
    """The key is already used by a different message (`.job_id` names the job that holds it)."""

    def __init__(self, key: str, job_id: str, what: str = "idempotency key"):
        self.key = key
        self.job_id = job_id
        super().__init__(f"{what} {key!r} is already used by job {job_id} for a different message")


class EnqueueFailed(CosmosSmsError):
    """Redis could not durably take the job(s) within the enqueue bound.

    `.job_ids` is empty when nothing was recorded (nothing will be sent); otherwise it names the jobs
    that may stand: check them with `get_status`, never re-send blindly. `.batch_id` (bulk calls) is
    the batch to repeat the call with, or to cancel.
    """

    def __init__(self, message: str, job_ids: Sequence[str] = (), batch_id: str | None = None):
        super().__init__(message)
        self.job_ids = list(job_ids)
        self.batch_id = batch_id
