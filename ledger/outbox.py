"""The outbox: broker messages for job ids, written into Redis by the ledger itself.

Messages follow Celery's task protocol 2 inside kombu's Redis envelope, so a stock
`celery worker` consumes them. Writing them ourselves lets a new record and its
broker message land in one round trip (no record without a message, no message
without a record) and keeps kombu's per-publish cost off the producer's hot path.
Payloads carry job ids only; the reconciler republishes whatever is still due.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterable, Sequence

import redis

from config.celery import TASK_DELIVER, TASK_DELIVER_BATCH
from config.keys import LANE_BULK, Keys

_ORIGIN = f"cosmos-sms@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_message(task: str, args: list[object], queue: str, argsrepr: str) -> str:
    """One Celery task message (protocol 2) as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    body = base64.b64encode(json.dumps([args, {}, _EMBED]).encode()).decode()
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": argsrepr,
                "kwargsrepr": "{}",
                "origin": _ORIGIN,
                "ignore_result": True,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        },
        separators=(",", ":"),
    )


def single_message(keys: Keys, lane: str, job_id: str) -> tuple[str, str]:
    """(broker list, message) that asks a worker to send one job."""
    queue = keys.queue(lane)
    return keys.broker_queue_key(lane), task_message(TASK_DELIVER, [job_id], queue, repr([job_id]))


def chunk_messages(keys: Keys, job_ids: Sequence[str], chunk_size: int) -> list[tuple[str, str]]:
    """(broker list, message) per chunk of bulk job ids."""
    queue = keys.queue(LANE_BULK)
    out = []
    for start in range(0, len(job_ids), chunk_size):
        chunk = list(job_ids[start : start + chunk_size])
        argsrepr = f"[{len(chunk)} jobs: {chunk[0]}…]"
        out.append((keys.broker_queue_key(LANE_BULK), task_message(TASK_DELIVER_BATCH, [chunk], queue, argsrepr)))
    return out


def push(client: redis.Redis, messages: Iterable[tuple[str, str]]) -> None:
    """Write messages to their broker lists in one round trip."""
    pipe = client.pipeline(transaction=False)
    for queue_key, message in messages:
        pipe.lpush(queue_key, message)
    pipe.execute()


def republish(client: redis.Redis, keys: Keys, jobs: Iterable[tuple[str, str]], chunk_size: int = 0) -> None:
    """Publish messages for (job id, lane) pairs: single-job ones, or bulk jobs in chunks of `chunk_size`."""
    messages: list[tuple[str, str]] = []
    bulk: list[str] = []
    for job_id, lane in jobs:
        if lane == LANE_BULK and chunk_size > 1:
            bulk.append(job_id)
        else:
            messages.append(single_message(keys, lane, job_id))
    messages += chunk_messages(keys, bulk, chunk_size) if bulk else []
    if messages:
        push(client, messages)
