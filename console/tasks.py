"""Whole-set operator actions as background jobs of the console process, never inside a request.

A task is recorded in `{P}:console:task:<id>` (kind, filter, state, done, refused, user, times),
kept a day, and run by a thread of the console process that handles at most STEP jobs per step,
so no Redis call holds the server long and the page can poll its progress. Dead-letter tasks
walk the dead set up to the moment they started (later deaths are not theirs); a batch cancel
walks the batch's members by index.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import cast

import redis

from ledger.controls import Controls
from ledger.outbox import republish
from ledger.store import Ledger

STEP = 1000
TASK_TTL_S = 86400
DEAD_ACTIONS = ("requeue", "purge")
log = logging.getLogger(__name__)


class Tasks:
    """Starts, runs and reports whole-set actions."""

    def __init__(self, ledger: Ledger, controls: Controls, batch_job_id: Callable[[str, int], str] | None = None):
        self.ledger = ledger
        self.controls = controls
        self.batch_job_id = batch_job_id
        self._threads: list[threading.Thread] = []

    @property
    def redis(self) -> redis.Redis:
        return self.ledger.redis

    def start(self, kind: str, user: str, *, reason: str = "", batch: str = "", run: bool = True) -> str:
        """Record a task and start its thread; returns the task id."""
        task_id = uuid.uuid4().hex[:16]
        key = self.ledger.keys.console_task(task_id)
        self.redis.hset(
            key,
            mapping={
                "kind": kind,
                "reason": reason,
                "batch": batch,
                "user": user,
                "state": "running",
                "done": 0,
                "refused": 0,
                "seen": 0,
                "started_ts": time.time(),
                "until_ts": time.time(),
            },
        )
        self.redis.expire(key, TASK_TTL_S)
        if run:
            thread = threading.Thread(target=self.run, args=(task_id,), name=f"console-task-{task_id}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return task_id

    def get(self, task_id: str) -> dict | None:
        raw = self.redis.hgetall(self.ledger.keys.console_task(task_id))
        return raw or None

    def run(self, task_id: str) -> None:
        """Step until the set is done; the outcome is recorded on the task and in the audit log."""
        key = self.ledger.keys.console_task(task_id)
        task = self._task(key)
        try:
            while self.step(task_id, task):
                task = self._task(key)
            task = self._task(key)
            self.redis.hset(key, mapping={"state": "finished", "finished_ts": time.time()})
            target = task.get("batch") or f"dead reason={task.get('reason') or 'any'}"
            self.controls.audit(
                task["user"], f"{task['kind']} (all matching)", target, int(task["done"]), f"refused {task['refused']}"
            )
        except Exception as exc:  # a failed step must show on the page, not vanish with the thread
            log.exception("console task %s failed", task_id)
            self.redis.hset(key, mapping={"state": "failed", "error": str(exc)[:300]})

    def _task(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], self.redis.hgetall(key))  # decode_responses: fields and values are str

    def step(self, task_id: str, task: dict) -> bool:
        """One step of at most STEP jobs; False when nothing is left."""
        if task["kind"] == "cancel_batch":
            return self._batch_step(task_id, task)
        return self._dead_step(task_id, task)

    def _dead_step(self, task_id: str, task: dict) -> bool:
        keys = self.ledger.keys
        skip = int(task["seen"])  # entries left in place (other reason, refused) before our window
        # decode_responses: members are str.
        ids = cast(list[str], self.redis.zrangebyscore(keys.dead, "-inf", task["until_ts"], start=skip, num=STEP))
        if not ids:
            return False
        reasons = self.ledger.redis.pipeline(transaction=False)
        for job_id in ids:
            reasons.hget(keys.job(job_id), "dead_reason")
        done = refused = kept = 0
        chosen: list[str] = []
        for job_id, reason in zip(ids, reasons.execute()):
            if reason is None:
                self.redis.zrem(keys.dead, job_id)  # record expired: the entry is stale
            elif task["reason"] and reason != task["reason"]:
                kept += 1
            else:
                chosen.append(job_id)
        republished: list[tuple[str, str]] = []
        for job_id, (ok, lane) in zip(
            chosen, self.ledger.operate_many(task["kind"], chosen, by=f"console:{task['user']}")
        ):
            if ok:
                done += 1
                if task["kind"] == "requeue":
                    republished.append((job_id, lane))
            else:
                refused += 1
                kept += 1
        if republished:
            republish(self.redis, keys, republished)
        self._progress(task_id, done, refused, kept)
        return True

    def _batch_step(self, task_id: str, task: dict) -> bool:
        if self.batch_job_id is None:
            raise RuntimeError("this ledger has no batch members index (ledger.schema.batch_job_id)")
        batch_key = self.ledger.keys.batch(task["batch"])
        total = int(self.redis.hget(batch_key, "total") or 0)
        start = int(task["seen"])
        if start == 0:
            self.redis.hset(batch_key, "cancelled", 1)  # as producers' cancel_batch: no new members
        if start >= total:
            return False
        ids = [self.batch_job_id(task["batch"], i) for i in range(start, min(total, start + STEP))]
        results = self.ledger.operate_many("cancel", ids, "batch_cancelled", by=f"console:{task['user']}")
        done = sum(ok for ok, _ in results)
        self._progress(task_id, done, len(ids) - done, len(ids))
        return True

    def _progress(self, task_id: str, done: int, refused: int, seen: int) -> None:
        key = self.ledger.keys.console_task(task_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(key, "done", done)
        pipe.hincrby(key, "refused", refused)
        pipe.hincrby(key, "seen", seen)
        pipe.execute()

    def join(self, timeout: float = 30) -> None:
        """Wait for running tasks (tests and shutdown)."""
        for thread in self._threads:
            thread.join(timeout)
