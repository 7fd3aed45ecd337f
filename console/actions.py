"""The console's POST routes: login, and operator actions (CSRF token, operator role, audit entry each)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from config.numbers import NUMBER
from console.auth import check_csrf, start_session
from console.tasks import DEAD_ACTIONS
from console.users import User, check_password
from console.web import console_of, operator_of, render
from ledger import operations
from ledger.controls import ControlError

Operator = Annotated[User, Depends(operator_of)]
"""The route's user: a logged-in operator (403 for a viewer)."""

router = APIRouter()
JOB_ACTIONS = ("cancel", "requeue", "resend", "mark_sent", "purge")
JOB_ACTIONS_DONE = {"cancel": "Cancelled", "requeue": "Requeued", "resend": "Resent", "mark_sent": "Marked sent"}
"""How a job action's result page names what was done."""
HELD_ACTIONS = ("resend", "mark_sent")
MAX_SELECTED = 1000
"""Jobs one form may select; a whole set goes through a background action instead."""
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    await check_csrf(request)
    console = console_of(request)
    form = await request.form()
    name, password = str(form.get("name", ""))[:100], str(form.get("password", ""))[:1000]
    next_path = str(form.get("next") or "/")
    await console.throttle.wait(name)
    # argon2 takes ~0.1 s of CPU (it releases the GIL): on a worker thread, bad logins never stall other pages.
    user = await run_in_threadpool(check_password, console.users, name, password)
    if user is None:
        console.throttle.failed(name)
        console.controls.audit(name or "(no name)", "login_failed", "console", 0, "wrong name or password")
        # One answer for an unknown name and a wrong password.
        return render(request, "login.html", 401, next=next_path, error="Wrong name or password.", user=None)
    console.throttle.succeeded(name)
    start_session(request, user)
    console.controls.audit(user.name, "login", user.role)
    return _see(next_path if next_path.startswith("/") and not next_path.startswith("//") else "/")


@router.post("/logout")
async def logout(request: Request):
    await check_csrf(request)
    request.session.clear()
    return _see("/login")


def _run_job_actions(console, user: User, action: str, job_ids: list[str]) -> tuple[int, list[str]]:
    """The operator action on each job, as the CLI runs it; (done, reasons of the refused ones)."""
    results = operations.apply(console.ledger, action, job_ids, f"console:{user.name}")
    done = sum(1 for _, ok, _ in results if ok)
    refused = [f"{job_id}: {why}" for job_id, ok, why in results if not ok]
    target = job_ids[0] if len(job_ids) == 1 else f"{len(job_ids)} selected"
    console.controls.audit(user.name, action, target, done, "; ".join(refused)[:300])
    return done, refused


@router.post("/messages/{job_id}/{action}", response_class=HTMLResponse)
async def job_action(request: Request, user: Operator, job_id: str, action: str):
    console = console_of(request)
    if action not in JOB_ACTIONS:
        raise HTTPException(404, f"no action {action[:40]}")
    if not _ID.match(job_id) or not console.redis.exists(console.keys.job(job_id)):
        raise HTTPException(404, f"no message with job id {job_id[:80]}")
    done, refused = _run_job_actions(console, user, action, [job_id])
    if done and action == "purge":
        return render(request, "done.html", user=user, message=f"Purged {job_id}.", back="/dead")
    back = f"/messages/{job_id}"
    if refused:
        return render(request, "error.html", 409, user=user, title="Not done", message=refused[0], back=back)
    record = console.ledger.get(job_id)
    now = f"; it is now {record['state']}" if record else ""
    message = f"{JOB_ACTIONS_DONE.get(action, action)} {job_id}{now}."
    return render(request, "done.html", user=user, message=message, back=back, back_label="Back to the message")


def _selected(form) -> list[str]:
    ids = [str(i) for i in form.getlist("ids") if str(i)]
    bad = next((i for i in ids if not _ID.match(i)), None)
    if bad is not None:
        raise HTTPException(400, "ids: not a job id")
    if len(ids) > MAX_SELECTED:
        raise HTTPException(400, f"ids: at most {MAX_SELECTED} at once; use 'every matching' for more")
    return ids


@router.post("/dead/action", response_class=HTMLResponse)
async def dead_action(request: Request, user: Operator):
    """Requeue or purge the selected dead letters, or every one matching the reason (a background task)."""
    console = console_of(request)
    form = await request.form()
    action, scope, reason = str(form.get("action", "")), str(form.get("scope", "selected")), str(form.get("reason", ""))
    if action not in DEAD_ACTIONS:
        raise HTTPException(400, "action: must be requeue or purge")
    if scope not in ("selected", "matching"):
        raise HTTPException(400, "scope: must be selected or matching")
    if reason and not _ID.match(reason):
        raise HTTPException(400, "reason: unexpected characters")
    ids = _selected(form) if scope == "selected" else []
    if scope == "selected" and not ids:
        return render(
            request,
            "error.html",
            400,
            user=user,
            title="Nothing selected",
            message="ids: select at least one dead letter, or choose every matching one",
        )
    if form.get("confirmed") != "yes":
        count = len(ids) if ids else _matching_count(console, reason)
        return render(
            request,
            "confirm.html",
            user=user,
            action=action,
            scope=scope,
            reason=reason,
            ids=ids,
            count=count,
            post_to="/dead/action",
        )
    if scope == "selected":
        done, refused = _run_job_actions(console, user, action, ids)
        return render(
            request,
            "done.html",
            user=user,
            back="/dead",
            message=f"{action.capitalize()}: {done} done, {len(refused)} refused.",
            refused=refused,
        )
    task_id = console.tasks.start(action, user.name, reason=reason)
    return _see(f"/tasks/{task_id}")


def _matching_count(console, reason: str) -> int:
    if not reason:
        return console.redis.zcard(console.keys.dead)
    return int(console.ledger.counters().get(f"dead:{reason}", 0))


@router.post("/held/action", response_class=HTMLResponse)
async def held_action(request: Request, user: Operator):
    console = console_of(request)
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in HELD_ACTIONS:
        raise HTTPException(400, "action: must be resend or mark_sent")
    ids = _selected(form)
    if not ids:
        return render(
            request,
            "error.html",
            400,
            user=user,
            title="Nothing selected",
            message="ids: select at least one held message",
        )
    done, refused = _run_job_actions(console, user, action, ids)
    return render(
        request,
        "done.html",
        user=user,
        back="/held",
        refused=refused,
        message=f"{action.replace('_', ' ').capitalize()}: {done} done, {len(refused)} refused.",
    )


def _numbers(form) -> list[str]:
    numbers = [n for n in re.split(r"[\s,]+", str(form.get("numbers", ""))) if n] + [
        str(n) for n in form.getlist("number") if str(n)
    ]
    bad = next((n for n in numbers if not NUMBER.fullmatch(n)), None)
    if bad is not None or not numbers:
        raise HTTPException(400, "numbers: each must be 0 followed by 14 digits")
    if len(numbers) > MAX_SELECTED:
        raise HTTPException(400, f"numbers: at most {MAX_SELECTED} at once")
    return numbers


@router.post("/suppression/add", response_class=HTMLResponse)
async def suppression_add(request: Request, user: Operator):
    console = console_of(request)
    numbers = _numbers(await request.form())
    added = operations.suppress(console.ledger, numbers, user.name)
    return render(request, "done.html", user=user, back="/suppression", message=f"Added {added} number(s).")


@router.post("/suppression/remove", response_class=HTMLResponse)
async def suppression_remove(request: Request, user: Operator):
    console = console_of(request)
    numbers = _numbers(await request.form())
    tally = operations.unsuppress(console.ledger, numbers, user.name)
    kept = f" {tally['kept']} stay suppressed: they opted out." if tally["kept"] else ""
    message = f"Removed {tally['removed']} number(s).{kept}"
    return render(request, "done.html", user=user, back="/suppression", message=message)


@router.post("/batches/{batch_id}/cancel", response_class=HTMLResponse)
async def batch_cancel(request: Request, user: Operator, batch_id: str):
    console = console_of(request)
    if not _ID.match(batch_id) or console.redis.type(console.keys.batch(batch_id)) != "hash":
        raise HTTPException(404, f"no batch {batch_id[:80]}")
    form = await request.form()
    if form.get("confirmed") != "yes":
        total = int(console.redis.hget(console.keys.batch(batch_id), "total") or 0)
        return render(
            request,
            "confirm.html",
            user=user,
            action="cancel_batch",
            scope="batch",
            reason="",
            ids=[],
            count=total,
            post_to=f"/batches/{batch_id}/cancel",
            batch=batch_id,
        )
    task_id = console.tasks.start("cancel_batch", user.name, batch=batch_id)
    return _see(f"/tasks/{task_id}")


@router.post("/controls/pause", response_class=HTMLResponse)
async def pause(request: Request, user: Operator):
    console = console_of(request)
    form = await request.form()
    lane = str(form.get("lane", "all"))
    try:
        console.controls.pause(None if lane == "all" else lane, str(form.get("reason", ""))[:200], user.name)
    except ControlError as exc:
        raise HTTPException(400, str(exc)) from None
    return _see("/controls")


@router.post("/controls/resume", response_class=HTMLResponse)
async def resume(request: Request, user: Operator):
    console = console_of(request)
    lane = str((await request.form()).get("lane", "all"))
    try:
        console.controls.resume(None if lane == "all" else lane, user.name)
    except ControlError as exc:
        raise HTTPException(400, str(exc)) from None
    return _see("/controls")


@router.post("/controls/resume-budget", response_class=HTMLResponse)
async def resume_budget_for_today(request: Request, user: Operator):
    console = console_of(request)
    operations.resume_budget(console.ledger, user.name)  # audited; not paused: nothing to do
    return _see("/")


@router.post("/controls/reset-breaker", response_class=HTMLResponse)
async def reset_breaker(request: Request, user: Operator):
    console_of(request).controls.reset_breaker(user.name)
    return _see("/controls")
