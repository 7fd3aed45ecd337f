"""Operator actions, the one implementation the CLI and the console both call.

Job actions (cancel, requeue, resend, mark_sent, purge) run one action script per job, at most STEP
jobs per round trip, and publish the broker messages of the jobs that went back to a queue
themselves (bulk ones in chunks, as `send_bulk` does); a publish lost to a crash is found by the
reconciler's lost-message rule. Whole sets (the dead set, a batch) go a step at a time, so a caller
can show progress; nothing is capped. Suppression list changes and the budget's resume land in
the audit stream; pause and resume are `ledger.controls.Controls`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.controls import Controls
from ledger.outbox import republish
from ledger.record import iso
from ledger.schema import STEP, batch_job_id
from ledger.store import Ledger

REQUEUING = frozenset({"requeue", "resend"})
"""Actions that put a job back in a queue: its broker message is published after the step."""
BATCH_CANCELLED = "batch_cancelled"
"""The cancel reason of a batch's members (one of ledger.schema.CANCEL_REASONS)."""


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


def suppress(ledger: Ledger, numbers: Sequence[str], by: str) -> int:
    """Put numbers on the suppression list (they are never sent to), STEP at a time; returns how many were new."""
    added = sum(ledger.suppress(numbers[i : i + STEP]) for i in range(0, len(numbers), STEP))
    Controls(ledger.redis, ledger.keys).audit(by, "suppression add", _numbers_target(numbers), added)
    return added


def unsuppress(ledger: Ledger, numbers: Sequence[str], by: str, force: bool = False) -> Counter[str]:
    """Lift the `operator` and `blacklist` reasons of numbers, and `opt_out` (the recipient's own STOP)
    only with `force`, STEP at a time; a number stays suppressed while a reason remains.
    Returns how many were `removed`, `kept` (still suppressed) and `absent`."""
    tally: Counter[str] = Counter()
    for i in range(0, len(numbers), STEP):
        tally.update(ledger.unsuppress(numbers[i : i + STEP], force))
    action = "suppression remove --force" if force else "suppression remove"
    detail = f"removed {tally['removed']}, still suppressed {tally['kept']}"
    Controls(ledger.redis, ledger.keys).audit(by, action, _numbers_target(numbers), tally["removed"], detail)
    return tally


def suppression_of(ledger: Ledger, number: str) -> dict[str, Any]:
    """Why `number` is suppressed: `suppressed`, and each reason with since when (ISO 8601, null if unknown)."""
    listed, reasons = ledger.suppression_reasons(number)
    return {
        "number": number,
        "suppressed": listed,
        "reasons": [{"reason": r, "since": iso(since)} for r, since in sorted(reasons.items())],
    }


def resume_budget(ledger: Ledger, by: str) -> tuple[bool, str]:
    """Lift the budget's pause for the rest of the budget day, audited: (done, the cap reached, or why not)."""
    done, detail = ledger.resume_budget(by)
    if done:
        Controls(ledger.redis, ledger.keys).audit(
            by, "resume_budget", "budget", 1, f"{detail} reached; until the day ends"
        )
    return done, detail


def _numbers_target(numbers: Sequence[str]) -> str:
    return numbers[0] if len(numbers) == 1 else f"{len(numbers)} numbers"


@dataclass(frozen=True)
class Step:
    """What one step over a whole set did; `seen` is how far the caller's position moves."""

    done: int
    refused: int
    seen: int


def dead_step(ledger: Ledger, action: str, until_ts: float, reason: str, skip: int, by: str = "") -> Step | None:
    """`action` on the next STEP dead jobs that died by `until_ts` (of `reason`, if given).

    `skip`: entries of the dead set left in place by earlier steps (another reason, refused);
    None once nothing is left. Entries whose record is gone are dropped from the dead set.
    """
    ids = ledger.dead_page(until_ts, skip, STEP)
    if not ids:
        return None
    reasons = ledger.dead_reasons(ids)
    chosen = [job_id for job_id, why in zip(ids, reasons) if why is not None and (not reason or why == reason)]
    kept = sum(1 for why in reasons if why is not None and reason and why != reason)
    ledger.forget_dead([job_id for job_id, why in zip(ids, reasons) if why is None])
    results = apply(ledger, action, chosen, by)
    done = sum(1 for _, ok, _ in results if ok)
    refused = len(results) - done
    return Step(done, refused, kept + refused)


def close_batch(ledger: Ledger, batch_id: str) -> bool:
    """Mark a batch cancelled (it takes no new members); False if there is no such batch."""
    return ledger.close_batch(batch_id)


def cancel_batch_step(ledger: Ledger, batch_id: str, start: int, by: str = "") -> Step | None:
    """Cancel the members `start` .. `start + STEP` of a closed batch that are not sent yet; None when done."""
    info = ledger.batch_info(batch_id)
    total = info["total"] if info else 0
    if start >= total:
        return None
    ids = [batch_job_id(batch_id, i) for i in range(start, min(total, start + STEP))]
    done = sum(ok for ok, _ in ledger.operate_many("cancel", ids, BATCH_CANCELLED, by=by))
    return Step(done, len(ids) - done, len(ids))


def cancel_batch(ledger: Ledger, batch_id: str, progress: Callable[[Step], None] | None = None, by: str = "") -> int:
    """Close a batch, then cancel every member not yet sent, a step at a time; returns how many."""
    if not close_batch(ledger, batch_id):
        return 0
    cancelled = start = 0
    while (step := cancel_batch_step(ledger, batch_id, start, by)) is not None:
        cancelled += step.done
        start += step.seen
        if progress is not None:
            progress(step)
    return cancelled
