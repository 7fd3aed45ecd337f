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
from typing import cast

import redis

from ledger import operations
from ledger.controls import Controls
from ledger.store import Ledger

TASK_TTL_S = 86400
DEAD_ACTIONS = ("requeue", "purge")
log = logging.getLogger(__name__)


class Tasks:
    """Starts, runs and reports whole-set actions."""

    def __init__(self, ledger: Ledger, controls: Controls):
        self.ledger = ledger
        self.controls = controls
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
        step = operations.dead_step(
            self.ledger,
            task["kind"],
            float(task["until_ts"]),
            task["reason"],
            int(task["seen"]),
            f"console:{task['user']}",
        )
        if step is None:
            return False
        self._progress(task_id, step.done, step.refused, step.seen)
        return True

    def _batch_step(self, task_id: str, task: dict) -> bool:
        start = int(task["seen"])
        if start == 0:
            operations.close_batch(self.ledger, task["batch"])
        step = operations.cancel_batch_step(self.ledger, task["batch"], start, f"console:{task['user']}")
        if step is None:
            return False
        self._progress(task_id, step.done, step.refused, step.seen)
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
