"""The receiver's FastAPI app: POST /delivery-status, GET /healthz, GET /metrics."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.metadata import version

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.redis_client import redis_client
from config.settings import Settings
from ledger.store import Ledger
from receipts import openapi
from receipts.intake import Refusal, job_of_token, parse_receipt, read_body, require_json
from receipts.metrics import PREFIX, LedgerCollector
from receipts.ratelimit import RateLimitMiddleware

log = structlog.get_logger("cosmos.receipts")


LEDGER_REFUSALS = {
    "to_mismatch": (403, "to_mismatch", "the receipt's `to` is not the job's recipient"),
    "unknown_job": (404, "unknown_job", "no such job (or its record passed retention)"),
}


def connect(settings: Settings) -> redis.Redis:
    # The receiver role's timeouts: answer 503 (COSMOS retries) well before COSMOS gives up.
    return redis_client(settings, "receiver")


def create_app(settings: Settings, redis_client: redis.Redis | None = None) -> FastAPI:
    """The receiver for `settings`; it owns (and closes) its Redis client unless one is given."""
    client = redis_client if redis_client is not None else connect(settings)
    ledger = Ledger(client, settings)
    secrets = [s.get_secret_value() for s in (settings.webhook_secret, settings.webhook_secret_previous)
               if s is not None and s.get_secret_value()]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(ledger))
    answered = Counter(f"{PREFIX}receiver_responses", "Delivery-status requests this receiver process answered, "
                       "by HTTP status.", ["code"], registry=registry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if redis_client is None:
            client.close()

    app = FastAPI(title=openapi.TITLE, description=openapi.DESCRIPTION, version=version("cosmos-sms"),
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(RateLimitMiddleware, rate=settings.webhook_rate_limit)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": _slug(exc.detail), "detail": exc.detail}, exc.status_code, exc.headers)

    @app.post("/delivery-status", summary="Take one COSMOS delivery receipt",
              responses=openapi.DELIVERY_STATUS_RESPONSES, openapi_extra=openapi.DELIVERY_STATUS_EXTRA,
              response_class=JSONResponse)
    async def delivery_status(request: Request) -> JSONResponse:
        """Apply the receipt to the job its token names: idempotent, never moves a final state backwards."""
        try:
            response = await _take_receipt(request, ledger, settings, secrets)
        except Refusal as refusal:
            log.warning("receipt refused", http=refusal.status, error=refusal.error, client=_client(request))
            response = JSONResponse({"error": refusal.error, "detail": refusal.detail}, refusal.status)
        except redis.RedisError as exc:
            log.error("receipt not recorded: Redis unavailable", error=type(exc).__name__)
            response = JSONResponse({"error": "unavailable", "detail": "Redis is unreachable; retry later"}, 503)
        except Exception:
            # A bug, not bad input (that is refused above): answer in our format, keep the traceback.
            log.exception("receipt not recorded: unexpected error")
            response = JSONResponse({"error": "internal_error", "detail": "not recorded; retry later"}, 500)
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

    @app.get("/metrics", summary="Prometheus metrics", responses=openapi.METRICS_RESPONSES,
             response_class=Response)
    async def metrics() -> Response:
        """Every figure under `cosmos_`, read from Redis now (see docs/receiver.md for the list)."""
        try:
            text = await run_in_threadpool(generate_latest, registry)
        except redis.RedisError:
            return JSONResponse({"error": "unavailable", "detail": "Redis is unreachable"}, 503)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


async def _take_receipt(request: Request, ledger: Ledger, settings: Settings, secrets: list[str]) -> JSONResponse:
    body = await read_body(request, settings.webhook_max_body_bytes)
    require_json(request)
    job_id = job_of_token(request, secrets)
    receipt = parse_receipt(body)
    result = await run_in_threadpool(
        ledger.apply_receipt, job_id, to=receipt.to, status=receipt.status, message_id=receipt.message_id,
        price=receipt.price, timestamp=receipt.message_timestamp,
    )
    if result in LEDGER_REFUSALS:
        raise Refusal(*LEDGER_REFUSALS[result])
    log.info("receipt taken", job_id=job_id, result=result, status=receipt.status, message_id=receipt.message_id)
    return JSONResponse({"result": result})


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _slug(detail: object) -> str:
    return str(detail).strip().lower().replace(" ", "_")
