"""Celery configuration shared by producers (publish only) and workers.

Each reliability setting says why it is there. The API credentials are never part
of this configuration: Flower and `celery inspect conf` show all of it.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from config.keys import LANES, Keys
from config.redis_client import BROKER_CONNECT_TIMEOUT_S, BROKER_SOCKET_TIMEOUT_S, is_sentinel_url, sentinel_kwargs
from config.settings import Settings

TASK_DELIVER = "cosmos.deliver"
"""Task name: send one job (its id is the only argument)."""
TASK_DELIVER_BATCH = "cosmos.deliver_batch"
"""Task name: send a chunk of bulk jobs concurrently."""


def celery_config(settings: Settings) -> dict:
    keys = Keys(settings.redis_prefix)
    transport = {
        # Every Celery key under our prefix, so a shared Redis stays tidy.
        "global_keyprefix": keys.celery_prefix,
        # One visibility timeout for broker and results, longer than any task
        # (settings refuse a lease that could outlive it).
        "visibility_timeout": settings.visibility_timeout_s,
        # Producers must fail fast (EnqueueFailed), not hang on a dead Redis.
        "socket_timeout": BROKER_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
    }
    if is_sentinel_url(settings.redis_url):
        # kombu's sentinel transport (and Celery's sentinel results backend) ask the sentinels for
        # the primary on every (re)connection; both read these two options (celery#6551: the
        # sentinels' password goes in sentinel_kwargs, the data nodes' in the URL).
        transport["master_name"] = settings.redis_sentinel_master
        transport["sentinel_kwargs"] = sentinel_kwargs(settings)
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": dict(transport),
        "task_queues": [Queue(keys.queue(lane)) for lane in LANES],
        "task_default_queue": keys.queue(LANES[0]),
        "task_serializer": "json",
        "accept_content": ["json"],
        # The ledger is the outcome store; Celery results would double Redis writes.
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        # Ack after the task ran: a worker killed mid-task leaves its message to be redelivered.
        "task_acks_late": True,
        # ...and a pool child that died (SIGKILL, OOM) rejects it back to the queue.
        "task_reject_on_worker_lost": True,
        # Take one message per free slot: no hoard of messages inside a dying worker.
        "worker_prefetch_multiplier": 1,
        # On broker connection loss, late-ack tasks cannot be acked: cancel and redeliver them.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # The worker's consumer retries the broker forever; producers have their own bound.
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Producers: a bounded publish retry, then EnqueueFailed.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        "worker_hijack_root_logger": False,
        # Task events cost three Redis publishes per task; Flower switches them on
        # in the workers it watches (its --enable_events default), so none are lost.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "broker_pool_limit": max(10, settings.worker_concurrency + 4),
    }


def make_celery(settings: Settings, name: str = "cosmos-sms") -> Celery:
    """A Celery app configured from `settings` (tasks are registered by the worker only)."""
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app
