"""The Celery app of the delivery workers, built by a factory from `Settings`.

`celery -A worker worker` asks the package for `app`; `worker/__init__.py` builds it then, from the
environment (`app_from_environment`). Importing any module here reads nothing and configures nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import redis
import structlog
from celery import Celery, signals

from config.celery import make_celery
from config.errors import SettingsError
from config.logging import configure_logging
from config.settings import Settings, load_settings
from worker.context import get_context, reset_context
from worker.forwarding import Forwarder, start_forwarder
from worker.reconciler import Reconciler
from worker.startup_checks import run_startup_checks
from worker.tasks import register_tasks

log = structlog.get_logger("cosmos.worker")


def create_app(settings: Settings) -> Celery:
    """A worker app for `settings`: tasks registered, lifecycle hooks connected."""
    app = make_celery(settings, name="cosmos-sms-worker")
    app.conf.worker_pool = "threads"
    app.conf.worker_concurrency = settings.worker_concurrency
    register_tasks(app, settings)
    _connect_lifecycle(settings)
    return app


def app_from_environment() -> Celery:
    """The app of `celery -A worker`: settings from the environment, logging configured; exit 2 if refused."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cosmos-sms worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    _quiet_task_lines(settings)
    return create_app(settings)


def _quiet_task_lines(settings: Settings) -> None:
    """Celery's "received" and "succeeded" lines only at DEBUG.

    The two lines cost ~70 µs of CPU per task (JSON rendering and the scrubber); each message's
    story is in its outcome record and events, and a task that fails still logs at ERROR.
    """
    if settings.log_level.upper() != "DEBUG":
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _connect_lifecycle(settings: Settings) -> None:
    reconciler: list[Reconciler] = []
    forwarders: list[Forwarder] = []

    def refuse_bad_start(**_: Any) -> None:
        try:
            run_startup_checks(settings, get_context(settings).redis)
        except SettingsError as exc:
            log.error(str(exc))
            raise SystemExit(2) from None
        except redis.RedisError as exc:
            log.warning("Redis not reachable yet; the consumer will keep retrying", error=str(exc))

    def after_fork(**_: Any) -> None:
        reset_context()

    def start_duties(**_: Any) -> None:
        """The reconciler, and the forwarder of final states to applications' callbacks."""
        reconciler.append(Reconciler(get_context(settings)))
        reconciler[0].start()
        forwarders.append(start_forwarder(get_context(settings)))
        if settings.transport == "smpp":
            get_context(settings).smpp_route.start()

    def stop_duties(**_: Any) -> None:
        for s in reconciler:
            s.stop()
        for f in forwarders:
            f.stop(timeout=10)
        if settings.transport == "smpp":
            get_context(settings).smpp_route.stop(timeout=10)

    def keep_our_logging(**_: Any) -> None:
        """Connected so Celery leaves the logging configured by the entry point alone."""

    signals.worker_init.connect(refuse_bad_start, weak=False)
    signals.worker_process_init.connect(after_fork, weak=False)
    signals.worker_ready.connect(start_duties, weak=False)
    signals.worker_shutdown.connect(stop_duties, weak=False)
    signals.setup_logging.connect(keep_our_logging, weak=False)
