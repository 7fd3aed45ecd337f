"""The receiver's FastAPI app: POST /delivery-status, GET /healthz, GET /metrics."""

from __future__ import annotations

import asyncio
import hmac
import typing
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.redis_client import redis_client
from config.settings import Settings
from ledger.stats import stats
from ledger.store import Ledger
from receipts import openapi
from receipts.intake import (
    Refusal,
    job_of_token,
    parse_receipt,
    read_body,
    require_json,
)
from receipts.metrics import PREFIX, LedgerCollector, RegistryCollector
from receipts.ratelimit import AuthFailureLimit
from receipts.refusals import Refusals
from receipts.schema import ReceiptAnswer

log = structlog.get_logger("cosmos.receipts")

OVERDUE_LOG_INTERVAL_S = 60.0
"""How often the receiver looks for overdue receipts and logs a warning when there are any."""

LEDGER_REFUSALS = {
    "to_mismatch": (403, "the receipt's `to` is not the job's recipient"),
    "unknown_job": (404, "no such job (or its record passed retention)"),
    "gone": (404, "the job's record passed retention"),
    "refused_foreign": (409, "the receipt names a message id this job has no reason to have"),
}
"""Ledger results that refuse a receipt: HTTP status and detail; the result is the `error`."""
ACCEPTED_RESULTS = frozenset(typing.get_args(ReceiptAnswer.model_fields["result"].annotation))
"""Results answered 200; anything else the ledger says is a refusal (409 unless listed above)."""


def connect(settings: Settings) -> redis.Redis:
    # The receiver role's timeouts: answer 503 (COSMOS retries) well before COSMOS gives up.
    return redis_client(settings, "receiver")


def create_app(settings: Settings, redis_client: redis.Redis | None = None, *, serve_metrics: bool = True) -> FastAPI:
    """The receiver for `settings`; it owns (and closes) its Redis client unless one is given.

    `serve_metrics=False` leaves /metrics out (the caller serves `app.state.registry` elsewhere,
    e.g. on a loopback port). `app.state.registry` holds every metric either way.
    """
    client = redis_client if redis_client is not None else connect(settings)
    ledger = Ledger(client, settings)
    secrets = [
        s.get_secret_value()
        for s in (settings.webhook_secret, settings.webhook_secret_previous)
        if s is not None and s.get_secret_value()
    ]
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    disable_created_metrics()  # no `_created` series: Grafana charts rate() of the totals
    # Redis-wide figures are the same from every replica; this process's own differ per replica.
    ledger_registry = CollectorRegistry(auto_describe=False)
    ledger_registry.register(LedgerCollector(ledger, settings.receipt_overdue_s))
    process_registry = CollectorRegistry(auto_describe=False)
    answered = Counter(
        f"{PREFIX}receiver_responses",
        "Delivery-status requests this receiver process answered, by HTTP status.",
        ["code"],
        registry=process_registry,
    )
    refusals = Refusals(process_registry)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegistryCollector(ledger_registry))
    registry.register(RegistryCollector(process_registry))
    scopes = {"": registry, "ledger": ledger_registry, "process": process_registry}
    auth_failures = AuthFailureLimit(settings.webhook_rate_limit)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        watcher = asyncio.create_task(_watch_overdue(ledger, settings.receipt_overdue_s))
        try:
            yield
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            if redis_client is None:
                client.close()

    app = FastAPI(
        title=openapi.TITLE,
        description=openapi.DESCRIPTION,
        version=version("cosmos-sms"),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.registry = registry

    def refuse(request: Request, refusal: Refusal) -> JSONResponse:
        if refusal.status == 401:
            # Only failed authentication spends the client's budget: COSMOS's receipts never do.
            wait = auth_failures.wait_after_failure(_client(request))
            if wait > 0:
                refusal = Refusal(
                    429,
                    "rate_limited",
                    f"over {auth_failures.rate:g} failed authentications/s",
                    {"Retry-After": str(max(1, int(wait + 0.999)))},
                )
        return refusals.answer(refusal, _client(request), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return refuse(request, Refusal(exc.status_code, _slug(exc.detail), exc.detail, exc.headers))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: still our JSON shape, counted; the traceback goes to the log.
        log.error("request failed: unexpected error", path=request.url.path, exc_info=exc)
        return refuse(request, Refusal(500, "internal_error", "unexpected error; retry later"))

    @app.post(
        "/delivery-status",
        summary="Take one COSMOS delivery receipt",
        responses=openapi.DELIVERY_STATUS_RESPONSES,
        openapi_extra=openapi.DELIVERY_STATUS_EXTRA,
        response_class=JSONResponse,
    )
    async def delivery_status(request: Request) -> JSONResponse:
        """Apply the receipt to the job its token names: idempotent, never moves a final state backwards."""
        try:
            response = await _take_receipt(request, ledger, settings, secrets)
        except Refusal as refusal:
            response = refuse(request, refusal)
        except redis.RedisError as exc:
            response = refuse(request, Refusal(503, "unavailable", "Redis is unreachable; retry later"))
            log.error("receipt not recorded: Redis unavailable", error=type(exc).__name__)
        except Exception:
            # A bug, not bad input (that is refused above): answer in our format, keep the traceback.
            log.exception("receipt not recorded: unexpected error")
            response = refuse(request, Refusal(500, "internal_error", "not recorded; retry later"))
        answered.labels(str(response.status_code)).inc()
        return response

    @app.get("/healthz", summary="Whether Redis answers", responses=openapi.HEALTHZ_RESPONSES)
    async def healthz() -> JSONResponse:
        """200 when Redis answers PING, else 503."""
        try:
            await run_in_threadpool(client.ping)
        except redis.RedisError:
            return JSONResponse({"redis": "unavailable"}, 503)
        return JSONResponse({"redis": "ok"})

    if serve_metrics:

        @app.get("/metrics", summary="Prometheus metrics", responses=openapi.METRICS_RESPONSES, response_class=Response)
        async def metrics(request: Request, scope: str = "") -> Response:
            """Every figure under `cosmos_`, read from Redis now (see docs/receiver.md for the list).

            `scope=ledger`: only the Redis-wide figures (scrape them from one target); `scope=process`:
            only this receiver process's own (scrape every replica)."""
            if metrics_token and not _bearer_matches(request, metrics_token):
                return refuse(
                    request,
                    Refusal(
                        401,
                        "invalid_metrics_token",
                        "GET /metrics needs Authorization: Bearer COSMOS_METRICS_TOKEN",
                        {"WWW-Authenticate": "Bearer"},
                    ),
                )
            try:
                if scope not in scopes:
                    return refuse(request, Refusal(400, "invalid_scope", "scope: must be ledger, process or absent"))
                text = await run_in_threadpool(generate_latest, scopes[scope])
            except redis.RedisError:
                return refuse(request, Refusal(503, "unavailable", "Redis is unreachable"))
            return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


async def _take_receipt(request: Request, ledger: Ledger, settings: Settings, secrets: list[str]) -> JSONResponse:
    # The token first: it needs no body, so an unauthenticated client never makes us read one.
    job_id = job_of_token(request, secrets)
    body = await read_body(request, settings.webhook_max_body_bytes)
    require_json(request)
    receipt = parse_receipt(body)
    result = await run_in_threadpool(
        ledger.apply_receipt,
        job_id,
        to=receipt.to,
        status=receipt.status,
        message_id=receipt.message_id,
        price=receipt.price,
        timestamp=receipt.message_timestamp,
    )
    if result not in ACCEPTED_RESULTS:
        status, detail = LEDGER_REFUSALS.get(result, (409, f"the ledger refused the receipt ({result})"))
        raise Refusal(status, str(result), detail)
    log.info("receipt taken", job_id=job_id, result=result, status=receipt.status, message_id=receipt.message_id)
    return JSONResponse({"result": result})


async def _watch_overdue(ledger: Ledger, threshold_s: float) -> None:
    """Log a warning every OVERDUE_LOG_INTERVAL_S while receipts are overdue (metrics show the same)."""
    while True:
        await asyncio.sleep(OVERDUE_LOG_INTERVAL_S)
        try:
            figures = await run_in_threadpool(stats, ledger, threshold_s)
        except redis.RedisError:
            continue  # /healthz and the receipts themselves say Redis is down
        if figures["receipts_overdue"]:
            log.warning(
                "receipts overdue",
                count=figures["receipts_overdue"],
                threshold_s=threshold_s,
                oldest_wait_s=figures["oldest_awaiting_receipt_s"],
            )


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _slug(detail: object) -> str:
    return str(detail).strip().lower().replace(" ", "_")
