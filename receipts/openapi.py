"""How /openapi.json describes the receiver: the token parameters, the body and every answer."""

from __future__ import annotations

from typing import Any

from cosmos_api.callback_token import PARAM_EXP, PARAM_JOB, PARAM_KID, PARAM_SIG
from receipts.schema import DeliveryStatus, ErrorAnswer, ReceiptAnswer

TITLE = "cosmos-sms delivery-status receiver"
DESCRIPTION = """\
Receives COSMOS's Delivery Status callbacks and completes each job's outcome record
(`sent` → `delivered` | `not_delivered`).

COSMOS signs nothing, so every callback URL the worker gives COSMOS carries a per-message
token (`cosmos_job`, `cosmos_exp`, `cosmos_kid`, `cosmos_sig`): an HMAC of the job id and its expiry under
`COSMOS_WEBHOOK_SECRET` (or `COSMOS_WEBHOOK_SECRET_PREVIOUS` after a rotation).
Requests without a valid token change nothing; only they are rate limited (per client),
never an authenticated receipt. Fields COSMOS may add to the body are ignored. Every
refusal answers `{"error": reason, "detail": ...}`. See docs/receiver.md.
"""

_TOKEN_PARAMETERS = [
    {
        "name": PARAM_JOB,
        "in": "query",
        "required": True,
        "schema": {"type": "string", "maxLength": 64},
        "description": "The job id this callback is for.",
    },
    {
        "name": PARAM_EXP,
        "in": "query",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "description": "Epoch seconds after which the token is refused (the attempt's time plus the retention).",
    },
    {
        "name": PARAM_KID,
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "Which webhook secret signed the token (a public key id).",
    },
    {
        "name": PARAM_SIG,
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "HMAC-SHA256 of the job id and expiry under that secret.",
    },
]

DELIVERY_STATUS_EXTRA = {
    "parameters": _TOKEN_PARAMETERS,
    "requestBody": {
        "required": True,
        "description": "COSMOS's Delivery Status parameters; any other field is ignored.",
        "content": {"application/json": {"schema": DeliveryStatus.model_json_schema()}},
    },
}


Responses = dict[int | str, dict[str, Any]]
"""The shape FastAPI takes for a route's `responses=`."""


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


DELIVERY_STATUS_RESPONSES: Responses = {
    200: {"model": ReceiptAnswer, "description": "The receipt was taken (or was already)."},
    400: _error("The body is not valid JSON."),
    401: _error("The callback token is missing, forged, or signed by a secret no longer accepted."),
    403: _error("The receipt's `to` is not the job's recipient."),
    404: _error("No such job (never existed, or its record passed retention)."),
    409: _error(
        "The ledger refused the receipt (e.g. `refused_foreign`: a message id this job has no reason "
        "to have); nothing changed."
    ),
    413: _error("The body is larger than COSMOS_WEBHOOK_MAX_BODY_BYTES."),
    415: _error("Content-Type is not application/json."),
    422: _error(
        "The JSON is not a Delivery Status: missing or mistyped fields, unknown status, "
        "bad number or timestamp (fields the spec does not list are ignored)."
    ),
    429: _error(
        "This client failed authentication more than COSMOS_WEBHOOK_RATE_LIMIT times per second; "
        "requests with a valid token are never limited."
    ),
    503: _error("Redis is unreachable; nothing was recorded, COSMOS should retry."),
}

HEALTHZ_RESPONSES: Responses = {
    200: {"description": "Redis answers PING.", "content": {"application/json": {"example": {"redis": "ok"}}}},
    503: {
        "description": "Redis does not answer.",
        "content": {"application/json": {"example": {"redis": "unavailable"}}},
    },
}

METRICS_RESPONSES: Responses = {
    200: {
        "description": "Prometheus text exposition, read from Redis at each scrape.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    401: _error("COSMOS_METRICS_TOKEN is set and the request has no matching `Authorization: Bearer` header."),
    503: _error("Redis is unreachable."),
}
