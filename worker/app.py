"""The Celery app of the delivery workers: `celery -A worker worker` loads this module."""

from __future__ import annotations

import sys

import redis
import structlog
from celery import signals

from config.celery import make_celery
from config.logging import configure_logging
from config.settings import SettingsError, load_settings
from worker.context import get_context, reset_context
from worker.scheduler import Scheduler
from worker.startup_checks import run_startup_checks
from worker.tasks import register_tasks

try:
    settings = load_settings()
except SettingsError as exc:
    print(f"cosmos-sms worker: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

configure_logging(settings)
log = structlog.get_logger("cosmos.worker")
app = make_celery(settings, name="cosmos-sms-worker")
app.conf.worker_pool = "threads"
app.conf.worker_concurrency = settings.worker_concurrency
register_tasks(app, settings)

_scheduler: Scheduler | None = None


@signals.worker_init.connect
def _refuse_bad_start(**_kwargs) -> None:
    try:
        run_startup_checks(settings, get_context(settings).redis)
    except SettingsError as exc:
        log.error(str(exc))
        raise SystemExit(2) from None
    except redis.RedisError as exc:
        log.warning("Redis not reachable yet; the consumer will keep retrying", error=str(exc))


@signals.worker_process_init.connect
def _after_fork(**_kwargs) -> None:
    reset_context()


@signals.worker_ready.connect
def _start_scheduler(**_kwargs) -> None:
    global _scheduler
    _scheduler = Scheduler(get_context(settings))
    _scheduler.start()


@signals.worker_shutdown.connect
def _stop_scheduler(**_kwargs) -> None:
    if _scheduler is not None:
        _scheduler.stop()


@signals.setup_logging.connect
def _keep_our_logging(**_kwargs) -> None:
    """Connected so Celery leaves the logging configured above alone."""
