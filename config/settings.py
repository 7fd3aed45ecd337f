"""Typed, frozen settings read once from the environment (and `.env`) at an entry point.

Every variable of the contract is here, plus the knobs the pipeline needs; each
default carries its unit in its name. Entry points call `load_settings()` and
pass the object down; nothing below reads `os.environ`.
"""

from __future__ import annotations

import base64
import re
import sys
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.backoff import backoff_bound_s
from config.errors import SettingsError
from config.quiet_window import parse_window

DEFAULT_RETENTION_S = 7 * 24 * 3600
"""Outcome records live 7 days (in seconds) after reaching a final state."""


DEFAULT_FORWARD_MAX_AGE_S = 86400.0
"""A forward is retried for 24 hours (in seconds) before it is given up into the failed list."""


LEASE_MARGIN_S = 5.0
"""Default lease time beyond the longest burst (seconds): Redis round trips, GC pauses."""


class Settings(BaseSettings):
    """Every setting of cosmos-sms; environment variable names in `alias`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, populate_by_name=True)

    redis_url: str = Field("redis://localhost:6379/0", alias="REDIS_URL")
    api_url: str = Field("https://api.cosmos.mobi/v1.0", alias="COSMOS_API_URL")
    api_key: SecretStr | None = Field(None, alias="COSMOS_API_KEY")
    api_secret: SecretStr | None = Field(None, alias="COSMOS_API_SECRET")
    webhook_url: str | None = Field(None, alias="COSMOS_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(None, alias="COSMOS_WEBHOOK_SECRET")
    webhook_secret_previous: SecretStr | None = Field(None, alias="COSMOS_WEBHOOK_SECRET_PREVIOUS")
    redis_prefix: str = Field("cosmos", alias="COSMOS_REDIS_PREFIX", pattern=r"^[A-Za-z0-9_.-]+$")

    # Retries: attempts per message, in-call burst, backoff between attempts.
    # The deadline (expires_in), not the attempt count, bounds a message's life: the default cap is
    # far above what exponential backoff to the cap fits into a day.
    max_attempts: int = Field(1000, alias="COSMOS_MAX_ATTEMPTS", ge=1, le=100_000)
    max_ambiguous_resends: int = Field(2, alias="COSMOS_MAX_AMBIGUOUS_RESENDS", ge=0, le=100)
    burst_attempts: int = Field(3, alias="COSMOS_BURST_ATTEMPTS", ge=1, le=10)
    retry_backoff_base_s: float = Field(0.5, alias="COSMOS_RETRY_BACKOFF_BASE_S", gt=0)
    retry_backoff_max_s: float = Field(300.0, alias="COSMOS_RETRY_BACKOFF_MAX_S", gt=0)
    connect_timeout_s: float = Field(3.05, alias="COSMOS_CONNECT_TIMEOUT_S", gt=0)
    read_timeout_s: float = Field(10.0, alias="COSMOS_READ_TIMEOUT_S", gt=0)
    default_expires_in_s: int = Field(86400, alias="COSMOS_DEFAULT_EXPIRES_IN_S", gt=0)
    ambiguous_policy: Literal["resend", "hold"] = Field("resend", alias="COSMOS_AMBIGUOUS_POLICY")
    rate_limit: float = Field(0.0, alias="COSMOS_RATE_LIMIT", ge=0)

    # Scheduled sends and quiet hours (docs/scheduling.md).
    max_schedule_ahead_s: int = Field(35 * 86400, alias="COSMOS_MAX_SCHEDULE_AHEAD_S", gt=0)
    quiet_hours: str | None = Field(None, alias="COSMOS_QUIET_HOURS")
    quiet_hours_tz: str = Field("UTC", alias="COSMOS_QUIET_HOURS_TZ")

    # Ledger and reconciler.
    retention_s: int = Field(DEFAULT_RETENTION_S, alias="COSMOS_RETENTION_S", gt=0)
    requeue_grace_s: float = Field(60.0, alias="COSMOS_REQUEUE_GRACE_S", gt=0)
    reconciler_interval_s: float = Field(1.0, alias="COSMOS_RECONCILER_INTERVAL_S", gt=0)
    renamed_scheduler_interval_s: float | None = Field(None, alias="COSMOS_SCHEDULER_INTERVAL_S", gt=0, exclude=True)
    """The old name of COSMOS_RECONCILER_INTERVAL_S, still read (`load_settings` warns)."""
    heartbeat_s: float = Field(5.0, alias="COSMOS_HEARTBEAT_S", gt=0)
    poison_deliveries: int = Field(3, alias="COSMOS_POISON_DELIVERIES", ge=1)
    lease_margin_s: float = Field(LEASE_MARGIN_S, alias="COSMOS_LEASE_MARGIN_S", gt=0)
    pause_probe_interval_s: float = Field(5.0, alias="COSMOS_PAUSE_PROBE_INTERVAL_S", gt=0)
    events_maxlen: int = Field(1_000_000, alias="COSMOS_EVENTS_MAXLEN", ge=0)
    visibility_timeout_s: int = Field(600, alias="COSMOS_VISIBILITY_TIMEOUT_S", gt=0)
    # Tests move the ledger's clock (Redis TIME plus this many seconds); refused outside COSMOS_TESTING=1.
    testing: bool = Field(False, alias="COSMOS_TESTING")
    test_clock_offset_s: float | None = Field(None, alias="COSMOS_TEST_CLOCK_OFFSET_S")

    # Budgets: caps per budget day, which starts at midnight in COSMOS_BUDGET_TZ (0 = no cap).
    daily_budget: float = Field(0.0, alias="COSMOS_DAILY_BUDGET", ge=0)
    daily_message_cap: int = Field(0, alias="COSMOS_DAILY_MESSAGE_CAP", ge=0)
    budget_tz: str = Field("UTC", alias="COSMOS_BUDGET_TZ")

    # Circuit breaker shared by every worker.
    breaker_threshold: int = Field(10, alias="COSMOS_BREAKER_THRESHOLD", ge=1)
    breaker_open_s: float = Field(5.0, alias="COSMOS_BREAKER_OPEN_S", gt=0)

    # Producers and workers.
    enqueue_timeout_s: float = Field(5.0, alias="COSMOS_ENQUEUE_TIMEOUT_S", gt=0)
    bulk_chunk_size: int = Field(50, alias="COSMOS_BULK_CHUNK_SIZE", ge=1, le=1000)
    worker_concurrency: int = Field(32, alias="COSMOS_WORKER_CONCURRENCY", ge=1)
    batch_threads: int = Field(50, alias="COSMOS_BATCH_THREADS", ge=1)
    log_format: Literal["json", "console", "auto"] = Field("auto", alias="COSMOS_LOG_FORMAT")
    log_level: str = Field("INFO", alias="COSMOS_LOG_LEVEL")

    # Receiver and dashboard.
    webhook_max_body_bytes: int = Field(4096, alias="COSMOS_WEBHOOK_MAX_BODY_BYTES", gt=0)
    webhook_rate_limit: float = Field(200.0, alias="COSMOS_WEBHOOK_RATE_LIMIT", ge=0)
    flower_basic_auth: SecretStr | None = Field(None, alias="COSMOS_FLOWER_BASIC_AUTH")

    # Operations console.
    console_users: SecretStr | None = Field(None, alias="COSMOS_CONSOLE_USERS")
    console_session_secret: SecretStr | None = Field(None, alias="COSMOS_CONSOLE_SESSION_SECRET")
    console_secure_cookie: Literal["auto", "always", "never"] = Field("auto", alias="COSMOS_CONSOLE_SECURE_COOKIE")
    console_session_max_age_s: int = Field(8 * 3600, alias="COSMOS_CONSOLE_SESSION_MAX_AGE_S", gt=0)

    # Receiver: metrics protection, overdue receipts.
    # COSMOS_WEBHOOK_RATE_LIMIT above limits only requests that fail authentication, per client.
    metrics_token: SecretStr | None = Field(None, alias="COSMOS_METRICS_TOKEN")
    receipt_overdue_s: float = Field(3600.0, alias="COSMOS_RECEIPT_OVERDUE_S", gt=0)

    # Outcomes pushed to the application (events and forwarding).
    app_webhook_secret: SecretStr | None = Field(None, alias="COSMOS_APP_WEBHOOK_SECRET")
    forward_timeout_s: float = Field(5.0, alias="COSMOS_FORWARD_TIMEOUT_S", gt=0, le=60)
    forward_max_age_s: float = Field(DEFAULT_FORWARD_MAX_AGE_S, alias="COSMOS_FORWARD_MAX_AGE_S", gt=0)
    forward_backoff_base_s: float = Field(5.0, alias="COSMOS_FORWARD_BACKOFF_BASE_S", gt=0)
    forward_backoff_max_s: float = Field(900.0, alias="COSMOS_FORWARD_BACKOFF_MAX_S", gt=0)
    forward_threads: int = Field(16, alias="COSMOS_FORWARD_THREADS", ge=1, le=256)
    forward_deny_private: bool = Field(False, alias="COSMOS_FORWARD_DENY_PRIVATE")
    forward_poll_s: float = Field(0.5, alias="COSMOS_FORWARD_POLL_S", gt=0)
    forward_breaker_threshold: int = Field(5, alias="COSMOS_FORWARD_BREAKER_THRESHOLD", ge=1)
    forward_breaker_open_s: float = Field(30.0, alias="COSMOS_FORWARD_BREAKER_OPEN_S", gt=0)

    @field_validator("app_webhook_secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value().removeprefix("whsec_")
        # The standardwebhooks package accepts unpadded base64 too; refuse anything else here, at start-up.
        if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", raw) or not base64.b64decode(raw + "=="):
            raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64")
        return value

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: object) -> object:
        """A value under a renamed variable counts when the new name is not set."""
        if isinstance(data, dict) and data.get("COSMOS_SCHEDULER_INTERVAL_S") is not None:
            if "COSMOS_RECONCILER_INTERVAL_S" not in data and "reconciler_interval_s" not in data:
                data = {**data, "COSMOS_RECONCILER_INTERVAL_S": data["COSMOS_SCHEDULER_INTERVAL_S"]}
        return data

    @model_validator(mode="after")
    def _coherent_forwarding(self) -> Settings:
        if self.forward_backoff_max_s < self.forward_backoff_base_s:
            raise ValueError("COSMOS_FORWARD_BACKOFF_MAX_S must be >= COSMOS_FORWARD_BACKOFF_BASE_S")
        return self

    @property
    def forward_connect_timeout_s(self) -> float:
        """Connect timeout of a forwarded POST: at most 2 s, never above the read timeout."""
        return min(2.0, self.forward_timeout_s)

    @property
    def forward_claim_grace_s(self) -> float:
        """How long a claimed forward stays invisible to other workers: one POST's bound plus a margin (s)."""
        return self.forward_connect_timeout_s + self.forward_timeout_s + LEASE_MARGIN_S

    # The archive: every record in a SQL database, for months.
    archive_url: SecretStr = Field(SecretStr("sqlite:///cosmos-archive.sqlite3"), alias="COSMOS_ARCHIVE_URL")
    archive_retention_days: int = Field(400, alias="COSMOS_ARCHIVE_RETENTION_DAYS", ge=0)
    redact_after_days: int = Field(0, alias="COSMOS_REDACT_AFTER_DAYS", ge=0)

    @property
    def archiving(self) -> bool:
        """False when COSMOS_ARCHIVE_URL is `none`: no archive is kept and records leave Redis as before."""
        return self.archive_url.get_secret_value().strip().lower() != "none"

    @model_validator(mode="after")
    def _redaction_after_retention(self) -> Settings:
        if 0 < self.redact_after_days * 86400 < self.retention_s:
            raise ValueError(
                f"COSMOS_REDACT_AFTER_DAYS must be 0 or at least the Redis retention "
                f"(COSMOS_RETENTION_S = {self.retention_s} s)"
            )
        return self

    # High availability: Sentinel and durable acknowledgements.
    # REDIS_URL may be kombu's `sentinel://h1:26379;sentinel://h2:26379` list; this names the primary.
    redis_sentinel_master: str | None = Field(None, alias="COSMOS_REDIS_SENTINEL_MASTER", validate_default=True)
    # The sentinels' own password (requirepass on the sentinels), when they have one.
    redis_sentinel_password: SecretStr | None = Field(None, alias="COSMOS_REDIS_SENTINEL_PASSWORD")
    # Replicas that must have an enqueue or a lease before it counts (WAIT); 0: the primary's memory is enough.
    redis_min_replicas: int = Field(0, alias="COSMOS_REDIS_MIN_REPLICAS", ge=0, le=16)
    # Longest WAIT for those replicas, in milliseconds (WAIT 0 would block forever, so > 0).
    redis_wait_timeout_ms: int = Field(1000, alias="COSMOS_REDIS_WAIT_TIMEOUT_MS", gt=0, le=60000)

    @field_validator("redis_sentinel_master")
    @classmethod
    def _sentinel_master(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        url = str(info.data.get("redis_url") or "")
        if value is None and urlsplit(url.split(";")[0]).scheme == "sentinel":
            raise ValueError(
                "is required when REDIS_URL is a sentinel:// list (the primary's name the sentinels "
                "monitor, e.g. mymaster)"
            )
        return value

    # --- end of high availability -------------------------------------------------------------------

    # --- The SMPP route (docs/smpp.md) ------------------------------------------------------------
    transport: str = Field("http", alias="COSMOS_TRANSPORT")
    smpp_url: str | None = Field(None, alias="COSMOS_SMPP_URL")
    smpp_system_id: str | None = Field(None, alias="COSMOS_SMPP_SYSTEM_ID")
    smpp_password: SecretStr | None = Field(None, alias="COSMOS_SMPP_PASSWORD")
    smpp_system_type: str = Field("", alias="COSMOS_SMPP_SYSTEM_TYPE", max_length=12)
    smpp_max_binds: int = Field(1, alias="COSMOS_SMPP_MAX_BINDS", ge=1, le=64)
    smpp_window: int = Field(10, alias="COSMOS_SMPP_WINDOW", ge=1, le=1000)
    smpp_response_timeout_s: float = Field(30.0, alias="COSMOS_SMPP_RESPONSE_TIMEOUT_S", gt=0, le=600)
    smpp_enquire_link_s: float = Field(30.0, alias="COSMOS_SMPP_ENQUIRE_LINK_S", gt=0, le=3600)
    smpp_status_map: str = Field("0x400=failed,0x401=spam,0x402=blacklist", alias="COSMOS_SMPP_STATUS_MAP")
    smpp_id_format: Literal["as-is", "hex-dec", "dec-hex"] = Field("as-is", alias="COSMOS_SMPP_ID_FORMAT")
    smpp_default_alphabet: Literal["gsm", "latin1"] = Field("gsm", alias="COSMOS_SMPP_DEFAULT_ALPHABET")
    smpp_price: float | None = Field(None, alias="COSMOS_SMPP_PRICE", ge=0)
    inbound_url: str | None = Field(None, alias="COSMOS_INBOUND_URL")

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        value = value.replace(" ", "").lower()
        if value not in ("http", "smpp"):
            raise ValueError("must be http or smpp (a fallback route such as smpp,http is not built yet)")
        return value

    @field_validator("smpp_url")
    @classmethod
    def _smpp_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("smpp", "smpps") or not parts.hostname or not parts.port:
            raise ValueError("must be smpp://HOST:PORT or smpps://HOST:PORT")
        return value

    @field_validator("smpp_status_map")
    @classmethod
    def _status_map(cls, value: str) -> str:
        from cosmos_api.smpp.answers import parse_status_map  # the one parser, also used by the client

        parse_status_map(value)
        return value

    def require_smpp(self) -> tuple[str, str, str]:
        """The SMPP URL, system_id and password, or SettingsError naming the missing variable."""
        for name, value in (
            ("COSMOS_SMPP_URL", self.smpp_url),
            ("COSMOS_SMPP_SYSTEM_ID", self.smpp_system_id),
            ("COSMOS_SMPP_PASSWORD", self.smpp_password.get_secret_value() if self.smpp_password else None),
        ):
            if not value:
                raise SettingsError(f"{name} is not set: the SMPP route needs it")
        assert self.smpp_url and self.smpp_system_id and self.smpp_password  # checked just above
        return self.smpp_url, self.smpp_system_id, self.smpp_password.get_secret_value()

    # --- end of the SMPP route ----------------------------------------------------------------------

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None:
            parse_window(value)  # raises ValueError naming the problem
        return value

    @field_validator("quiet_hours_tz")
    @classmethod
    def _quiet_hours_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from exc
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("webhook_url", "inbound_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        scheme = urlsplit(value.split(";")[0]).scheme
        if scheme not in ("redis", "rediss", "unix", "sentinel"):
            raise ValueError("must be a redis://, rediss://, unix:// URL or a sentinel:// list")
        if scheme == "sentinel":
            for part in value.split(";"):
                parts = urlsplit(part.strip())
                if part.strip() and (parts.scheme != "sentinel" or not parts.hostname):
                    raise ValueError(f"{part.strip()!r} is not a sentinel://host:port entry")
        return value

    @field_validator("budget_tz")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("test_clock_offset_s")
    @classmethod
    def _test_clock_only_in_tests(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not info.data.get("testing"):
            raise ValueError("moves the ledger's clock, so it is accepted only with COSMOS_TESTING=1")
        return value

    @property
    def clock_offset_s(self) -> float:
        """Seconds the ledger adds to Redis TIME: 0 outside tests."""
        return self.test_clock_offset_s or 0.0

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("COSMOS_WEBHOOK_SECRET is required when COSMOS_WEBHOOK_URL is set")
        if self.retry_backoff_max_s < self.retry_backoff_base_s:
            raise ValueError("COSMOS_RETRY_BACKOFF_MAX_S must be >= COSMOS_RETRY_BACKOFF_BASE_S")
        if self.daily_budget > 0 and "smpp" in self.transport.split(",") and self.smpp_price is None:
            # SMPP answers carry no price: without one a budget could never be reached.
            raise ValueError("COSMOS_DAILY_BUDGET on an SMPP route needs COSMOS_SMPP_PRICE (SMPP carries no price)")
        if self.lease_s >= self.visibility_timeout_s:
            raise ValueError(
                f"COSMOS_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s}) must exceed the lease "
                f"({self.lease_s:.0f} s, from the timeouts and burst), or a running task is redelivered"
            )
        return self

    # Derived bounds: a task never outlives its lease, the lease never outlives visibility.
    @property
    def attempt_bound_s(self) -> float:
        """Longest one HTTP attempt can take (connect plus read timeout), in seconds."""
        http = self.connect_timeout_s + self.read_timeout_s
        # Over SMPP an attempt may wait for a window slot, then for its submit_sm_resp.
        return max(http, 2 * self.smpp_response_timeout_s) if self.transport == "smpp" else http

    @property
    def burst_bound_s(self) -> float:
        """Longest one in-call burst can take: its attempts plus the waits between them."""
        waits = sum(
            backoff_bound_s(n, self.retry_backoff_base_s, self.retry_backoff_max_s)
            for n in range(1, self.burst_attempts)
        )
        return self.burst_attempts * self.attempt_bound_s + waits

    @property
    def lease_s(self) -> float:
        """How long a worker owns a job: a whole burst plus a margin, in seconds."""
        return self.burst_bound_s + self.lease_margin_s

    def require_credentials(self) -> tuple[str, str]:
        """The API key and secret, or SettingsError naming the missing variable."""
        for name, value in (("COSMOS_API_KEY", self.api_key), ("COSMOS_API_SECRET", self.api_secret)):
            if value is None or not value.get_secret_value():
                raise SettingsError(f"{name} is not set: the worker refuses to start without it")
        assert self.api_key is not None and self.api_secret is not None  # checked just above
        return self.api_key.get_secret_value(), self.api_secret.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a bad value raises SettingsError naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the values
    except ValidationError as exc:
        error = exc.errors()[0]
        where = error.get("loc") or ()
        name = _alias_of(where[0]) if where else "configuration"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from exc
    if settings.renamed_scheduler_interval_s is not None:
        # Printed, not logged: logging is configured from these very settings afterwards.
        print(
            "cosmos-sms: COSMOS_SCHEDULER_INTERVAL_S is now COSMOS_RECONCILER_INTERVAL_S; the old name still works",
            file=sys.stderr,
        )
    return settings


def _alias_of(field_name: object) -> str:
    field = Settings.model_fields.get(str(field_name))
    return field.alias if field and field.alias else str(field_name)
