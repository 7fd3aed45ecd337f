"""The console's History (live and archived records together) and Reports (charts of the daily facts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from archive.history import BadCursor, history, parse_cursor
from archive.schema import ArchiveRefused
from archive.store import HistoryQuery
from console.reports import report
from console.users import User
from console.web import console_of, render, user_of
from ledger.record import STATES

Viewer = Annotated[User, Depends(user_of)]
router = APIRouter()
PAGE = 50
FILTERS = ("to", "message_id", "batch", "state", "since", "until")


def _time(value: str, name: str) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 time (e.g. 2026-05-01T00:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, user: Viewer):
    console = console_of(request)
    params = {k: (request.query_params.get(k) or "").strip() for k in (*FILTERS, "after")}
    rows: list[dict] = []
    next_cursor: str | None = None
    error: str | None = None
    try:
        if params["state"] and params["state"] not in STATES:
            raise ValueError(f"state: one of {', '.join(STATES)}")
        q = HistoryQuery(
            params["to"] or None,
            params["message_id"] or None,
            params["batch"] or None,
            params["state"] or None,
            _time(params["since"], "since"),
            _time(params["until"], "until"),
            parse_cursor(params["after"]),
        )
        rows, next_cursor = history(console.ledger, console.archive, q, PAGE)
    except (ValueError, BadCursor, ArchiveRefused) as exc:
        error = str(exc)
    next_params = {k: v for k, v in params.items() if k != "after" and v}
    return render(
        request,
        "history.html",
        400 if error else 200,
        user=user,
        params=params,
        rows=rows,
        error=error,
        next_cursor=next_cursor,
        next_params=next_params,
        states=STATES,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: Viewer):
    console = console_of(request)
    try:
        archive = console.archive
        figures = report(archive) if archive is not None else None
        error = None if archive is not None else "No archive is kept (COSMOS_ARCHIVE_URL is none)."
    except ArchiveRefused as exc:
        figures, error = None, str(exc)
    return render(request, "reports.html", 200, user=user, figures=figures, error=error)
