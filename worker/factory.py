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

from archive.opening import open_archive
from archive.schema import ArchiveRefused
from config.celery import make_celery
from config.errors import SettingsError
from config.keys import LANES, Keys
from config.logging import configure_logging
from config.settings import Settings, load_settings
from worker.archiver import Archiver
from worker.context import get_context, reset_context
from worker.forwarding import Forwarder, start_forwarder
from worker.heartbeat import Heartbeat, TaskGauge
from worker.reconciler import Reconciler
from worker.startup_checks import run_startup_checks
from worker.tasks import register_tasks

log = structlog.get_logger("cosmos.worker")


def create_app(settings: Settings, *, lifecycle: bool = True) -> Celery:
    """A worker app for `settings`: tasks registered and, with `lifecycle`, its duties tied to Celery's signals.

    Without `lifecycle` the caller runs `WorkerDuties` itself (a worker embedded in another process).
    """
    app = make_celery(settings, name="cosmos-sms-worker")
    app.conf.worker_pool = "threads"
    app.conf.worker_concurrency = settings.worker_concurrency
    register_tasks(app, settings)
    if lifecycle:
        _connect_lifecycle(app, settings)
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


def _lanes(app: Celery, settings: Settings) -> list[str]:
    """The lanes this process consumes (`--queues`), all of them when none was named."""
    consumed = set(app.amqp.queues.consume_from or ())
    keys = Keys(settings.redis_prefix)
    return [lane for lane in LANES if not consumed or keys.queue(lane) in consumed]


class WorkerDuties:
    """What a worker process runs beside Celery's consumer: start-up checks, the reconciler, the forwarder,
    the archiver and the heartbeat (with the gauge of running tasks it reports)."""

    def __init__(self, app: Celery, settings: Settings):
        self.app = app
        self.settings = settings
        self.tasks = TaskGauge()
        self.reconciler: Reconciler | None = None
        self.forwarder: Forwarder | None = None
        self.heartbeat: Heartbeat | None = None
        self.archiver: Archiver | None = None

    def check_start(self) -> None:
        """Refuse a start that could only go wrong (exit 2), an archive that cannot be used among them;
        a Redis not yet up is waited for."""
        try:
            run_startup_checks(self.settings, get_context(self.settings).redis)
            self._open_archive()
        except (SettingsError, ArchiveRefused) as exc:
            log.error(str(exc))
            raise SystemExit(2) from None
        except redis.RedisError as exc:
            log.warning("Redis not reachable yet; the consumer will keep retrying", error=str(exc))

    def start(self) -> None:
        ctx = get_context(self.settings)
        reconciler = self.reconciler = Reconciler(ctx)
        reconciler.start()
        self.forwarder = start_forwarder(ctx)
        if self.settings.archiving and self.archiver is None:  # Redis was unreachable at the start-up check
            try:
                self._open_archive()
            except (ArchiveRefused, redis.RedisError) as exc:
                log.error("archiver not started", error=str(exc))
        if self.archiver is not None:
            self.archiver.start()
        self.heartbeat = Heartbeat(ctx, _lanes(self.app, self.settings), self.tasks, lambda: reconciler.last_ran_ts)
        self.heartbeat.start()
        if self.settings.transport == "smpp":
            ctx.smpp_route.start()  # the bind lives in this process: plain `celery -A worker worker` sends too

    def stop(self) -> None:
        if self.settings.transport == "smpp":
            get_context(self.settings).smpp_route.stop(timeout=10)  # window drained, unbind, lease given back
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.reconciler is not None:
            self.reconciler.stop()
            self.reconciler.join(10)
        if self.archiver is not None:
            self.archiver.stop()
        if self.forwarder is not None:
            self.forwarder.stop(timeout=10)

    def _open_archive(self) -> None:
        archive = open_archive(self.settings, get_context(self.settings).ledger)
        if archive is not None:
            self.archiver = Archiver(get_context(self.settings), archive)


def _connect_lifecycle(app: Celery, settings: Settings) -> None:
    duties = WorkerDuties(app, settings)

    def refuse_bad_start(**_: Any) -> None:
        duties.check_start()

    def after_fork(**_: Any) -> None:
        reset_context()

    def start_duties(**_: Any) -> None:
        duties.start()

    def stop_duties(**_: Any) -> None:
        duties.stop()

    def keep_our_logging(**_: Any) -> None:
        """Connected so Celery leaves the logging configured by the entry point alone."""

    signals.worker_init.connect(refuse_bad_start, weak=False)
    signals.worker_process_init.connect(after_fork, weak=False)
    signals.worker_ready.connect(start_duties, weak=False)
    signals.worker_shutdown.connect(stop_duties, weak=False)
    signals.setup_logging.connect(keep_our_logging, weak=False)
    signals.task_prerun.connect(duties.tasks.started, weak=False)
    signals.task_postrun.connect(duties.tasks.ended, weak=False)
