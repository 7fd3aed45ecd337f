"""The console's GET pages: they read and render, and never change anything."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sse_starlette.sse import EventSourceResponse

from console.auth import csrf_token
from console.overview import figures
from console.search import PAGE_SIZE, SCAN_LIMIT, Query, SearchError, parse_query
from console.users import User
from console.web import console_of, render, user_of
from ledger.processes import LOST_AFTER_BEATS, Heartbeats
from ledger.schema import PAUSE_SCOPES

Viewer = Annotated[User, Depends(user_of)]
"""The route's user: any logged-in user."""

router = APIRouter()
STREAM_INTERVAL_S = 2.0
STREAM_LIFETIME_UPDATES = 300
"""An overview stream ends after this many updates; the browser's EventSource reconnects."""
SUPPRESSION_STEP = 200
"""SSCAN COUNT of one suppression page: a bounded read, and a page a person can look through."""
MAX_FORWARDS = 10
_BATCH = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", next=_local(next), error=None)


def _local(path: str) -> str:
    """Only a path of this site (no `//host` or scheme) is followed after login."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: Viewer):
    console = console_of(request)
    return render(request, "overview.html", user=user, f=figures(console.ledger, console.controls, console.activity))


@router.get("/overview/tiles", response_class=HTMLResponse)
def overview_tiles(request: Request, user: Viewer):
    console = console_of(request)
    return render(request, "_tiles.html", user=user, f=figures(console.ledger, console.controls, console.activity))


@router.get("/overview/stream")
async def overview_stream(request: Request, user: Viewer, updates: int = STREAM_LIFETIME_UPDATES):
    """Server-sent events: the rendered tiles every STREAM_INTERVAL_S, for a bounded number of updates."""
    console = console_of(request)
    template = console.templates.get_template("_tiles.html")
    csrf = csrf_token(request)  # the budget tile's "resume for today" form

    async def tiles():
        for _ in range(max(1, min(updates, STREAM_LIFETIME_UPDATES))):
            if await request.is_disconnected():
                break
            f = await asyncio.to_thread(figures, console.ledger, console.controls, console.activity)
            yield {"event": "tiles", "data": template.render(f=f, user=user, csrf=csrf)}
            await asyncio.sleep(STREAM_INTERVAL_S)

    return EventSourceResponse(tiles())


@router.get("/messages", response_class=HTMLResponse)
def messages(request: Request, user: Viewer):
    console = console_of(request)
    params = dict(request.query_params)
    error = None
    rows: list[dict] = []
    page = None
    try:
        q = parse_query(params)
        searched = any(
            params.get(k)
            for k in (
                "job_id",
                "message_id",
                "number",
                "idem",
                "batch",
                "state",
                "reason",
                "since",
                "until",
                "scheduled",
            )
        )
        page = console.searcher.run(q)
        rows = [r for r in console.ledger.get_many(page.job_ids) if r]
        exact = any(params.get(k) for k in ("job_id", "message_id", "idem"))
        if exact and len(rows) == 1 and not page.next_cursor:
            return RedirectResponse(f"/messages/{quote(rows[0]['job_id'], safe='')}", status_code=303)
    except SearchError as exc:
        q, searched, error = Query(), True, str(exc)
    status = 400 if error else 200
    next_params = {k: v for k, v in params.items() if k != "cursor" and v}
    return render(
        request,
        "messages.html",
        status,
        user=user,
        params=params,
        rows=rows,
        error=error,
        page=page,
        driver=q.driver,
        searched=searched,
        next_params=next_params,
        page_size=PAGE_SIZE,
        scan_limit=SCAN_LIMIT,
    )


@router.get("/messages/{job_id}", response_class=HTMLResponse)
def message(request: Request, user: Viewer, job_id: str):
    console = console_of(request)
    # decode_responses: field names and values are str.
    record = console.ledger.get(job_id) if len(job_id) <= 200 else None
    if record is None:
        raise HTTPException(404, f"no message with job id {job_id[:80]}")
    return render(
        request,
        "message.html",
        user=user,
        r=record,
        forwards=_forwards(console, job_id, int(console.redis.hget(console.keys.job(job_id), "fwd_seq") or 0)),
        actions=_actions(record["state"]),
    )


def _actions(state: str) -> list[tuple[str, str]]:
    """(action, label) that apply to a job in this state."""
    return {
        "queued": [("cancel", "Cancel")],
        "retrying": [("cancel", "Cancel")],
        "held": [("resend", "Resend"), ("mark_sent", "Mark sent"), ("cancel", "Cancel")],
        "dead": [("requeue", "Requeue"), ("purge", "Purge")],
    }.get(state, [])


def _forwards(console, job_id: str, seq: int) -> list[dict]:
    """The job's forwards to the application's callback (`{P}:fwd:<job>.<n>`), the last MAX_FORWARDS."""
    ids = [f"{job_id}.{n}" for n in range(max(1, seq - MAX_FORWARDS + 1), seq + 1)]
    if not ids:
        return []
    pipe = console.redis.pipeline(transaction=False)
    for fid in ids:
        pipe.hgetall(console.keys.forward(fid))
        pipe.zscore(console.keys.forwards_failed, fid)
        pipe.zscore(console.keys.forwards_due, fid)
    replies = pipe.execute()
    out = []
    for i, fid in enumerate(ids):
        fwd, failed, due = replies[3 * i : 3 * i + 3]
        status = (
            "failed for good"
            if failed is not None
            else "pending"
            if due is not None
            else "delivered"
            if fwd
            else "done (record gone)"
        )
        out.append(
            {
                "id": fid,
                "url": fwd.get("url"),
                "attempts": fwd.get("attempts"),
                "created_ts": fwd.get("created_ts"),
                "status": status,
            }
        )
    return out


@router.get("/processes", response_class=HTMLResponse)
def processes(request: Request, user: Viewer):
    console = console_of(request)
    seen = Heartbeats(console.redis, console.keys).seen()
    return render(request, "processes.html", user=user, processes=seen, lost_after=LOST_AFTER_BEATS)


@router.get("/dead", response_class=HTMLResponse)
def dead(request: Request, user: Viewer, reason: str = "", cursor: str = ""):
    console = console_of(request)
    reasons = sorted(
        (
            (k.split(":", 1)[1], int(v))
            for k, v in console.ledger.counters().items()
            if k.startswith("dead:") and int(v) > 0
        ),
        key=lambda kv: -kv[1],
    )
    error = None
    rows, page = [], None
    try:
        q = parse_query({"state": "dead", "reason": reason, "cursor": cursor})
        page = console.searcher.run(q)
        rows = [r for r in console.ledger.get_many(page.job_ids) if r]
    except SearchError as exc:
        error = str(exc)
    return render(
        request,
        "dead.html",
        400 if error else 200,
        user=user,
        reasons=reasons,
        reason=reason,
        rows=rows,
        page=page,
        error=error,
        size=console.redis.zcard(console.keys.dead),
    )


@router.get("/held", response_class=HTMLResponse)
def held(request: Request, user: Viewer, cursor: str = ""):
    console = console_of(request)
    error, rows, page = None, [], None
    try:
        page = console.searcher.run(parse_query({"state": "held", "cursor": cursor}))
        rows = [r for r in console.ledger.get_many(page.job_ids) if r]
    except SearchError as exc:
        error = str(exc)
    return render(
        request,
        "held.html",
        400 if error else 200,
        user=user,
        rows=rows,
        page=page,
        error=error,
        size=console.redis.zcard(console.keys.held),
    )


@router.get("/suppression", response_class=HTMLResponse)
def suppression(request: Request, user: Viewer, q: str = "", cursor: str = "0"):
    """SSCAN one bounded step at a time; `q` is a prefix or a whole number (digits only)."""
    console = console_of(request)
    error, next_cursor = None, None
    numbers: list[str] = []
    if q and not re.fullmatch(r"[0-9]{1,15}", q):
        error = "q: digits only (a whole number or its beginning)"
    elif not cursor.isdigit():
        error = "cursor: malformed (start the search again)"
    else:
        scan_cursor, numbers = cast(
            tuple[int, list[str]],  # decode_responses: members are str
            console.redis.sscan(
                console.keys.suppressed, int(cursor), match=f"{q}*" if q else None, count=SUPPRESSION_STEP
            ),
        )
        next_cursor = str(scan_cursor) if scan_cursor else None
    return render(
        request,
        "suppression.html",
        400 if error else 200,
        user=user,
        q=q,
        numbers=sorted(numbers),
        next_cursor=next_cursor,
        error=error,
        size=console.redis.scard(console.keys.suppressed),
    )


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, user: Viewer, batch: str = "", cursor: str = "0"):
    """A batch by id, or the batches one bounded SCAN step finds."""
    console = console_of(request)
    error, found, next_cursor = None, [], None
    if batch:
        if not _BATCH.match(batch):
            error = "batch: unexpected characters"
        else:
            found = [batch]
    elif not cursor.isdigit():
        error = "cursor: malformed"
    else:
        scan_cursor, keys = cast(
            tuple[int, list[str]],  # decode_responses: key names are str
            console.redis.scan(int(cursor), match=console.keys.batch("*"), count=SCAN_LIMIT, _type="HASH"),
        )
        found = sorted(k.removeprefix(console.keys.batch("")) for k in keys)
        next_cursor = str(scan_cursor) if scan_cursor else None
    pipe = console.redis.pipeline(transaction=False)
    for batch_id in found:
        pipe.hgetall(console.keys.batch(batch_id))
    progress = [(b, _batch_progress(raw)) for b, raw in zip(found, pipe.execute()) if raw]
    status = 400 if error else (404 if batch and not progress else 200)
    if status == 404:
        error = f"no batch {batch}"
    return render(
        request, "batches.html", status, user=user, batch=batch, batches=progress, next_cursor=next_cursor, error=error
    )


def _batch_progress(raw: dict) -> dict:
    total = int(raw.get("total") or 0)
    states = {k.split(":", 1)[1]: int(v) for k, v in raw.items() if k.startswith("state:") and int(v or 0)}
    final = sum(v for s, v in states.items() if s in ("delivered", "not_delivered", "dead", "expired", "cancelled"))
    return {
        "total": total,
        "states": states,
        "final": final,
        "cancelled": raw.get("cancelled") not in (None, "", "0"),
        "created_ts": raw.get("created_ts"),
        "percent": round(100 * final / total, 1) if total else 0.0,
    }


@router.get("/controls", response_class=HTMLResponse)
def controls(request: Request, user: Viewer):
    console = console_of(request)
    return render(
        request,
        "controls.html",
        user=user,
        pauses=console.controls.pauses(),
        breaker=console.ledger.breaker(),
        scopes=PAUSE_SCOPES,
        rate_limit=console.settings.rate_limit,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, user: Viewer, before: str = ""):
    console = console_of(request)
    if before and not re.fullmatch(r"[0-9]+-[0-9]+", before):
        return render(
            request,
            "audit.html",
            400,
            user=user,
            entries=[],
            next_cursor=None,
            error="before: malformed (start from the newest)",
        )
    entries, next_cursor = console.controls.audit_page(before or None)
    return render(request, "audit.html", user=user, entries=entries, next_cursor=next_cursor, error=None)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task(request: Request, user: Viewer, task_id: str):
    console = console_of(request)
    found = console.tasks.get(task_id) if re.fullmatch(r"[0-9a-f]{16}", task_id) else None
    if found is None:
        raise HTTPException(404, f"no background action {task_id[:40]}")
    template = "_task.html" if request.headers.get("hx-request") else "task.html"
    return render(request, template, user=user, task=found, task_id=task_id)


INBOUND_PAGE = 50
"""Inbound messages per page: a bounded XREVRANGE."""


@router.get("/inbound", response_class=HTMLResponse)
def inbound(request: Request, user: Viewer, before: str = ""):
    """Inbound messages from recipients (a STOP, a reply), newest first, a page at a time."""
    console = console_of(request)
    if before and not re.fullmatch(r"[0-9]+-[0-9]+", before):
        return render(
            request,
            "inbound.html",
            400,
            user=user,
            rows=[],
            next_cursor=None,
            error="before: malformed (start from the newest)",
        )
    rows = console.ledger.inbound_page(before or "+", INBOUND_PAGE)
    next_cursor = rows[-1]["id"] if len(rows) == INBOUND_PAGE else None
    return render(request, "inbound.html", user=user, rows=rows, next_cursor=next_cursor, error=None)
