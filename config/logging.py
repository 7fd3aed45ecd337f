"""structlog set-up: JSON in production, readable in a terminal, nothing secret or personal.

Global state department: `configure_logging` sets structlog and the stdlib root
logger once per process, so Celery's and uvicorn's own lines pass the same scrubbers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from config.numbers import NUMBER_IN_TEXT
from config.settings import Settings

_NUMBER_FIELDS = frozenset({"to", "number", "recipient"})
_NEVER_LOGGED = frozenset({"text", "api_secret", "api_key", "body"})


def mask_number(number: str) -> str:
    """A phone number as logs show it: enough to correlate, not enough to dial."""
    return number[:3] + "*" * 8 + number[-4:] if len(number) == 15 else "***"


def _mask_personal(_logger: Any, _name: str, event: dict) -> dict:
    for key in list(event):
        if key in _NEVER_LOGGED:
            event[key] = "[removed]"
        elif key in _NUMBER_FIELDS and isinstance(event[key], str):
            event[key] = mask_number(event[key])
    return event


class _Scrubber:
    """Last processor: the rendered line never carries a secret's value, wherever it hid."""

    def __init__(self, secrets: list[str]):
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def scrub(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, "[secret]")
        return NUMBER_IN_TEXT.sub(lambda m: mask_number(m.group(0)), line)

    def __call__(self, _logger: Any, _name: str, line: str) -> str:
        return self.scrub(line)


def configure_logging(settings: Settings, *, stream=None) -> None:
    """Set structlog and stdlib logging for this process from `settings`."""
    stream = stream or sys.stderr
    secrets = [
        s.get_secret_value()
        for s in (
            settings.api_secret,
            settings.api_key,
            settings.webhook_secret,
            settings.webhook_secret_previous,
            settings.flower_basic_auth,
        )
        if s is not None
    ]
    scrubber = _Scrubber(secrets)
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not stream.isatty())
    renderer = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    # Processors are plain callables; structlog's own annotations are narrower than what it accepts.
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_personal,
    ]
    # Tracebacks as data without frame locals: locals are where secrets live.
    tracebacks = (
        structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
        if use_json
        else structlog.processors.format_exc_info
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer, scrubber],  # type: ignore[list-item]
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level.upper())),
        cache_logger_on_first_use=True,
    )
