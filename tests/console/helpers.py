"""Console test helpers: records in the ledger's shapes, log in, read forms and pages with BeautifulSoup."""

from __future__ import annotations

import time
import uuid

from bs4 import BeautifulSoup

from config.keys import Keys
from ledger.store import Ledger, NewJob

OPERATOR = ("alice", "operator", "correct horse battery staple")
VIEWER = ("victor", "viewer", "viewer password 123")


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def csrf_of(response) -> str:
    field = soup(response).find("input", attrs={"name": "csrf_token"})
    assert field is not None, response.text[:500]
    return field["value"]


def login(client, name: str, password: str):
    page = client.get("/login")
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(page), "next": "/"},
                       follow_redirects=False)


def token(client) -> str:
    """The session's CSRF token, read from a page as a browser would."""
    return csrf_of(client.get("/controls"))


def number(i: int) -> str:
    return f"0{i:014d}"


def enqueue(ledger: Ledger, to: str, *, lane: str = "single", idem: str | None = None, batch: str = "") -> str:
    """A record written by the ledger's own enqueue, plus the console's indexes (the lead's Lua adds them too)."""
    job_id = uuid.uuid4().hex
    ledger.enqueue([NewJob(job_id, lane, to, "Sender", "hello", None, idem, f"fp-{job_id}", 3600)])
    keys: Keys = ledger.keys
    created = float(ledger.redis.hget(keys.job(job_id), "created_ts"))
    pipe = ledger.redis.pipeline()
    pipe.zadd(keys.idx_created, {job_id: created}, nx=True)
    pipe.zadd(keys.idx_to(to), {job_id: created}, nx=True)
    if batch:
        pipe.hset(keys.job(job_id), "batch", batch)
    pipe.execute()
    return job_id


def make_dead(ledger: Ledger, job_id: str, reason: str) -> None:
    """Move a queued job to dead as the ledger's `dead` does (state, reason, set, counters)."""
    keys, r, t = ledger.keys, ledger.redis, time.time()
    pipe = r.pipeline()
    pipe.hset(keys.job(job_id), mapping={"state": "dead", "dead_reason": reason, "updated_ts": t})
    pipe.zrem(keys.due, job_id)
    pipe.zadd(keys.dead, {job_id: t})
    pipe.hincrby(keys.counters, "state:queued", -1)
    pipe.hincrby(keys.counters, "state:dead", 1)
    pipe.hincrby(keys.counters, f"dead:{reason}", 1)
    pipe.execute()


def make_held(ledger: Ledger, job_id: str) -> None:
    keys, r, t = ledger.keys, ledger.redis, time.time()
    pipe = r.pipeline()
    pipe.hset(keys.job(job_id), mapping={"state": "held", "updated_ts": t})
    pipe.zrem(keys.due, job_id)
    pipe.zadd(keys.held, {job_id: t})
    pipe.hincrby(keys.counters, "state:queued", -1)
    pipe.hincrby(keys.counters, "state:held", 1)
    pipe.execute()
