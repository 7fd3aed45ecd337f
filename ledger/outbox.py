"""The outbox relay: publish recorded jobs to the broker by task name (never by import).

Producers publish right after recording; the workers' scheduler republishes what the
ledger says is due. A duplicate message is harmless: the lease decides who sends.
"""

from __future__ import annotations

from typing import Sequence

from celery import Celery

from config.celery import TASK_DELIVER, TASK_DELIVER_BATCH
from config.keys import LANE_BULK, Keys


def publish_single(app: Celery, keys: Keys, lane: str, job_id: str, producer=None) -> None:
    """One job, one broker message; the payload is the job id and nothing else."""
    app.send_task(TASK_DELIVER, args=[job_id], queue=keys.queue(lane), argsrepr=repr([job_id]),
                  producer=producer, ignore_result=True)


def publish_chunks(app: Celery, keys: Keys, job_ids: Sequence[str], chunk_size: int, producer=None) -> None:
    """Bulk jobs: one broker message per chunk of ids, in the bulk lane."""
    for start in range(0, len(job_ids), chunk_size):
        chunk = list(job_ids[start:start + chunk_size])
        app.send_task(TASK_DELIVER_BATCH, args=[chunk], queue=keys.queue(LANE_BULK),
                      argsrepr=f"[{len(chunk)} jobs: {chunk[0]}…]", producer=producer, ignore_result=True)
