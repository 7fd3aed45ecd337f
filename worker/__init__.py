"""The delivery workers: Celery tasks that send jobs, the reconciler and the forwarder.

`celery -A worker worker` looks up `worker.app` (or `worker.celery`): it is built on that first
access from the environment, never at import.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from worker.factory import app_from_environment

        built = app_from_environment()
        globals()["app"] = globals()["celery"] = built
        return built
    raise AttributeError(name)
