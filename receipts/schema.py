"""The delivery-status body COSMOS posts, as a pydantic model strict on its known fields, and the answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from config.numbers import NUMBER_PATTERN

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The spec's `message_timestamp` pattern, YYYY-MM-DD HH:MM:SS (UTC)."""
MAX_PRICE_USD = 1_000_000.0
"""Largest price accepted, in US dollars: far above any SMS, far below what overflows the price total."""
MAX_MESSAGE_ID_CHARS = 100

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# Printable, no ';': the ledger keeps extra message ids in one ';'-separated field.
_MESSAGE_ID = r"^[^\x00-\x1f\x7f;]+$"

Number = Annotated[str, StringConstraints(pattern=rf"^{NUMBER_PATTERN}$")]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_ID_CHARS, pattern=_MESSAGE_ID)]


class DeliveryStatus(BaseModel):
    """COSMOS's Delivery Status parameters, each strictly typed; fields COSMOS may add later are ignored.

    Refusing unknown fields would refuse every receipt the day COSMOS adds one.
    """

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        title="DeliveryStatus",
        json_schema_extra={
            "example": {
                "status": "delivered",
                "to": "033334445566770",
                "message_id": "Az_42415-252521",
                "price": 0.0,
                "message_timestamp": "2016-04-05 09:22:57",
            }
        },
    )

    status: Literal["delivered", "not_delivered"] = Field(description="Where the message is in the delivery process.")
    to: Number = Field(description="The recipient the message was sent to: 0 and 14 ASCII digits.")
    message_id: MessageId = Field(description="COSMOS's id of the message, as the send response gave it.")
    price: float = Field(
        ge=0,
        le=MAX_PRICE_USD,
        allow_inf_nan=False,
        description="What the message cost in US dollars; replaces the send response's price.",
    )
    message_timestamp: str = Field(
        description="When COSMOS started pushing this status, UTC, YYYY-MM-DD HH:MM:SS.",
        json_schema_extra={"pattern": _TIMESTAMP.pattern},
    )

    @field_validator("message_timestamp")
    @classmethod
    def _real_moment(cls, value: str) -> str:
        if not _TIMESTAMP.fullmatch(value):
            raise ValueError("must match YYYY-MM-DD HH:MM:SS")
        datetime.strptime(value, TIMESTAMP_FORMAT)  # ValueError for 2016-02-30 or 25:00:00
        return value


class ReceiptAnswer(BaseModel):
    """What the ledger did with an accepted receipt."""

    result: Literal["applied", "pending", "duplicate", "extra", "settled", "late"] = Field(
        description=(
            "applied: the job is now delivered or not_delivered; pending: the job is still being sent, "
            "the receipt is kept and applied when `sent` is recorded (and no new attempt is made); "
            "duplicate: already applied, nothing changed; extra: a message id other than the job's after "
            "an attempt with an unknown outcome, counted as an extra send; settled: a job held or waiting "
            "after an attempt with an unknown outcome is now known to be sent and its status applied; "
            "late: a job that had ended expired, dead or cancelled did go out: the provider's word wins "
            "(`late: true` on the record)."
        )
    )


class ErrorAnswer(BaseModel):
    """A refused request: a machine-readable `error` and a human-readable `detail`."""

    error: str = Field(description="What was wrong, e.g. invalid_token, invalid_json, invalid_body.")
    detail: Any = Field(None, description="A sentence, or for invalid_body the list of field errors.")
