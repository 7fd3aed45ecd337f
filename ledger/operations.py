"""Operator actions over many jobs, in bounded steps: the CLI and the console share these.

Each step runs one action script per job in one round trip (at most STEP jobs), then publishes
the jobs that went back to a queue. Whole sets are walked page by page, never capped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from ledger.outbox import republish
from ledger.schema import STEP
from ledger.store import Ledger

REQUEUING = frozenset({"requeue", "resend"})
"""Actions that put a job back in a queue: its broker message is published after the step."""


def apply(ledger: Ledger, action: str, job_ids: Sequence[str], by: str = "") -> list[tuple[str, bool, str]]:
    """`action` on each job, STEP at a time (`by`: who asked); returns (job id, done, lane or why not)."""
    out: list[tuple[str, bool, str]] = []
    for start in range(0, len(job_ids), STEP):
        step = list(job_ids[start : start + STEP])
        results = ledger.operate_many(action, step, by=by)
        if action in REQUEUING:
            back = [(job_id, lane) for job_id, (done, lane) in zip(step, results) if done]
            republish(ledger.redis, ledger.keys, back, chunk_size=ledger.settings.bulk_chunk_size)
        out += [(job_id, done, why) for job_id, (done, why) in zip(step, results)]
    return out


def apply_to_pages(
    ledger: Ledger,
    action: str,
    pages: Iterable[list[str]],
    progress: Callable[[int, int], None] | None = None,
    by: str = "",
) -> Counter[str]:
    """`action` on every job of every page (e.g. `ledger.dead_ids(reason)`); counts done / refused."""
    tally: Counter[str] = Counter()
    for page in pages:
        for _, done, _ in apply(ledger, action, page, by):
            tally["done" if done else "refused"] += 1
        if progress is not None:
            progress(tally["done"], tally["refused"])
    return tally
