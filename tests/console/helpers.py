"""Console test helpers: records in the ledger's shapes, log in, read forms and pages with BeautifulSoup."""

from __future__ import annotations

import uuid
from typing import Any

from bs4 import BeautifulSoup, Tag

from ledger.schema import batch_job_id
from ledger.store import Ledger, NewJob

OPERATOR = ("alice", "operator", "correct horse battery staple")
VIEWER = ("victor", "viewer", "viewer password 123")


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def el(node: Tag, *args: Any, **kwargs: Any) -> Tag:
    """`node.find(...)` for an element the page must have: fails (not None) when it is missing."""
    found = node.find(*args, **kwargs)
    assert isinstance(found, Tag), f"no element {args} {kwargs} in {str(node)[:300]}"
    return found


def csrf_of(response) -> str:
    field = soup(response).find("input", attrs={"name": "csrf_token"})
    assert field is not None, response.text[:500]
    value = field["value"]
    assert isinstance(value, str), value  # bs4 types an attribute as str | list; `value` is never multi-valued
    return value


def login(client, name: str, password: str):
    page = client.get("/login")
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(page), "next": "/"},
        follow_redirects=False,
    )


def token(client) -> str:
    """The session's CSRF token, read from a page as a browser would."""
    return csrf_of(client.get("/controls"))


def number(i: int) -> str:
    return f"0{i:014d}"


def enqueue(ledger: Ledger, to: str, *, lane: str = "single", idem: str | None = None) -> str:
    """A record written by the ledger's own enqueue (which also writes the search indexes)."""
    job_id = uuid.uuid4().hex
    ledger.enqueue([NewJob(job_id, lane, to, "Sender", "hello", None, False, idem, f"fp-{job_id}", 3600)])
    return job_id


def enqueue_batch(ledger: Ledger, batch_id: str, numbers: list[str]) -> list[str]:
    """A batch as send_bulk records it: member ids from ledger.schema.batch_job_id, the batch hash."""
    jobs = [
        NewJob(batch_job_id(batch_id, i), "bulk", to, "Sender", "hello", None, False, None, f"fp-{i}", 3600)
        for i, to in enumerate(numbers)
    ]
    ledger.enqueue(jobs, batch_id=batch_id, batch_fingerprint=f"bfp-{batch_id}", batch_total=len(jobs))
    return [job.job_id for job in jobs]


def _attempt(ledger: Ledger, job_id: str) -> str:
    owner = f"test-{uuid.uuid4().hex[:6]}"
    attempt = ledger.begin(job_id, owner, count_delivery=False)
    assert attempt.verdict == "go", attempt
    return owner


def make_dead(ledger: Ledger, job_id: str, reason: str) -> None:
    """Kill a queued job through the ledger's own path: an attempt that COSMOS refused for good."""
    ledger.finish(job_id, _attempt(ledger, job_id), "permanent", status=reason, http=200, error=reason)
    record = ledger.get(job_id)
    assert record is not None and record["state"] == "dead", record


def make_held(ledger: Ledger, job_id: str) -> None:
    """Hold a queued job through the ledger: an ambiguous attempt under the `hold` policy."""
    held = Ledger(ledger.redis, ledger.settings.model_copy(update={"ambiguous_policy": "hold"}))
    held.finish(job_id, _attempt(held, job_id), "ambiguous", status="timeout", error="read timeout")
    record = ledger.get(job_id)
    assert record is not None and record["state"] == "held", record
