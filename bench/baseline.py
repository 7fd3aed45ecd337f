"""The naive baseline: a bare Celery app whose task does one `requests` POST and one Redis write.

Run by the benchmark as `celery -A bench.baseline worker --pool threads -c 64`; configured by
BENCH_BASELINE_* environment variables so the worker and the feeding process agree.
"""

from __future__ import annotations

import os

import redis
import requests
from celery import Celery, signals
from requests.adapters import HTTPAdapter

CONCURRENCY = 64
"""Threads of the baseline worker; its HTTP pool has as many keep-alive connections."""
TASK_NAME = "bench.baseline.send"


def done_key(prefix: str) -> str:
    """Counter: tasks that ran to the end."""
    return f"{prefix}:done"


def ready_key(prefix: str) -> str:
    """Set by the worker once it consumes (at the default WARNING level Celery logs no `ready`)."""
    return f"{prefix}:ready"


QUEUE = "bench.baseline"
"""The baseline's queue; each run drains it, so runs never mix."""

_env = os.environ.get
# Read at import: `celery -A bench.baseline` and the feeding process both get it from the environment.
app = Celery("bench-baseline", broker=_env("BENCH_BASELINE_REDIS_URL", "redis://localhost:6379/0"))
app.conf.task_default_queue = QUEUE
app.conf.task_ignore_result = True
_prefix = _env("BENCH_BASELINE_PREFIX", "baseline")
_sms_url = _env("BENCH_BASELINE_SMS_URL", "http://127.0.0.1:8900/v1.0/sms/")
_credentials = {"api_key": _env("COSMOS_API_KEY", ""), "api_secret": _env("COSMOS_API_SECRET", "")}

# What a careful straightforward worker would hold: one module-level Session shared by all threads.
# Its pool is sized to the threads: with the default 10, 54 threads would reconnect on every send,
# and the baseline would be weaker than anyone would write it on purpose.
session = requests.Session()
session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=CONCURRENCY))
store = redis.Redis.from_url(app.conf.broker_url, decode_responses=True)


@app.task(name=TASK_NAME, ignore_result=True)
def send(job: int, to: str, sender: str, text: str) -> None:
    """POST one message to COSMOS and record the answer."""
    response = session.post(_sms_url, json={**_credentials, "to": to, "from": sender, "text": text}, timeout=(3.05, 10))
    answer = response.json()
    pipe = store.pipeline(transaction=False)
    pipe.hset(
        f"{_prefix}:job:{job}",
        mapping={
            "state": "sent" if answer.get("status") == "ok" else "failed",
            "message_id": answer.get("message_id", ""),
        },
    )
    pipe.incr(done_key(_prefix))
    pipe.execute()


@signals.worker_ready.connect
def _announce_ready(**_kwargs) -> None:
    store.set(ready_key(_prefix), 1)
