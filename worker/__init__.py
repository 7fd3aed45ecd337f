"""The delivery workers: Celery tasks that send jobs, the scheduler and reconciler."""

from worker.app import app

__all__ = ["app"]
