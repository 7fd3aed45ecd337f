"""The producer API of application code: enqueue SMS jobs and read their outcomes.

    from producers import send_sms, send_bulk, get_status, cancel
"""

from config.errors import EnqueueFailed, IdempotencyConflict, InvalidMessage
from producers.api import cancel, get_status, send_bulk, send_sms
from producers.producer import SmsProducer

__all__ = [
    "send_sms", "send_bulk", "get_status", "cancel", "SmsProducer",
    "InvalidMessage", "IdempotencyConflict", "EnqueueFailed",
]
