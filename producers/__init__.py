"""The producer API of application code: enqueue SMS jobs and read their outcomes.

from producers import send_sms, send_bulk, get_status, cancel, get_batch, cancel_batch
from producers import EventReader, EventFeed, Event, EventsMissed   # outcome events (docs/outcomes.md)
"""

from config.errors import EnqueueFailed, IdempotencyConflict, InvalidMessage
from producers.api import cancel, cancel_batch, get_batch, get_status, send_bulk, send_sms
from producers.events import Event, EventFeed, EventReader, EventsMissed
from producers.producer import SmsProducer

__all__ = [
    "send_sms",
    "send_bulk",
    "get_status",
    "cancel",
    "get_batch",
    "cancel_batch",
    "SmsProducer",
    "InvalidMessage",
    "IdempotencyConflict",
    "EnqueueFailed",
    "EventReader",
    "EventFeed",
    "Event",
    "EventsMissed",
]
