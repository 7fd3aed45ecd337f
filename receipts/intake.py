"""Checking one delivery-status request, cheapest refusal first: token, size, content type, body."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request

from cosmos_api.callback_token import TOKEN_PARAMS, verify
from receipts.schema import DeliveryStatus

MAX_TOKEN_PARAM_CHARS = 128
"""Longest token parameter looked at; real ones are 8 to 64 characters."""


class Refusal(Exception):
    """A request the receiver refuses: HTTP status, machine-readable error, human detail."""

    def __init__(self, status: int, error: str, detail: object, headers: Mapping[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refusal(413, "large_request", f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "large_request", f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refusal(400, "incomplete_body", "the client went away before sending the whole body") from None
    return b"".join(chunks)


def require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise Refusal(415, "unsupported_media_type", "Content-Type must be application/json")


def job_of_token(request: Request, secrets: list[str]) -> str:
    """The job id the callback token names, if one of `secrets` signed it and it has not expired."""
    params = {}
    for name in TOKEN_PARAMS:
        values = request.query_params.getlist(name)
        # One ASCII value each: hmac.compare_digest raises on non-ASCII str, and a repeated
        # parameter would leave the choice of value to the framework.
        if len(values) != 1 or not values[0].isascii() or len(values[0]) > MAX_TOKEN_PARAM_CHARS:
            raise Refusal(401, "invalid_token", "missing or invalid callback token")
        params[name] = values[0]
    job_id = verify(params, secrets, time.time())
    if job_id is None:
        raise Refusal(401, "invalid_token", "missing or invalid callback token")
    return job_id


def parse_receipt(body: bytes) -> DeliveryStatus:
    """The body as a DeliveryStatus: 400 when it is not standard JSON, 422 when it is not a receipt.

    The standard library parses (UTF-8, no NaN/Infinity anywhere, ignored fields included), then
    the model checks the known fields strictly: one reading of "JSON" whatever fields COSMOS adds.
    """
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        raise Refusal(400, "invalid_json", "the body is not valid JSON") from None
    try:
        return DeliveryStatus.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        detail = [{"field": ".".join(str(part) for part in e["loc"]) or "(body)", "msg": e["msg"]} for e in errors[:10]]
        raise Refusal(422, "invalid_body", detail) from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
