"""Who is asking: login sessions, roles, CSRF tokens and the delay after failed logins.

The session is Starlette's signed cookie (itsdangerous): HttpOnly, SameSite=Strict, and Secure
unless the console is bound to a loopback address over plain http (see `secure_cookie`). The CSRF
token is a random per-session value that every POST must echo (form field `csrf_token` or header
`X-CSRF-Token`). A library such as starlette-csrf implements double-submit cookies, which need a
second cookie readable by scripts; a synchronizer token kept inside the already signed session is
simpler and stronger here, and it is a dozen lines.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets

import redis
from fastapi import Request

from config.keys import Keys
from console.users import User

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FREE_FAILURES = 2
"""Failed logins under one name answered without delay; later ones wait longer and longer."""
MAX_DELAY_S = 8.0
FAILURE_WINDOW_S = 900
"""Failures are forgotten this long after the last one."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class NotLoggedIn(Exception):
    """The request has no valid session; pages redirect to the login form."""


class Forbidden(Exception):
    """The user may not do this (a viewer acting, or a missing or wrong CSRF token)."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def secure_cookie(mode: str, host: str) -> bool:
    """Whether the session cookie carries `Secure`.

    `auto`: yes unless the console listens on a loopback address, where it is reached over
    plain http from the same machine (a Secure cookie would never be sent back there) and the
    cookie never crosses a network. Behind an operator's TLS proxy the bind address is not
    loopback, so the cookie is Secure. `always` / `never` force the choice.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    return host not in LOOPBACK_HOSTS


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Forbidden unless the POST echoes this session's token."""
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form()
        given = form.get(CSRF_FIELD)
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise Forbidden("the form's security token is missing or stale; reload the page and try again")


def session_user(request: Request, users: dict[str, User]) -> User:
    """The logged-in user (looked up afresh, so a removed user is logged out); NotLoggedIn otherwise."""
    name = request.session.get("user")
    user = users.get(name) if isinstance(name, str) else None
    if user is None:
        raise NotLoggedIn()
    return user


def start_session(request: Request, user: User) -> None:
    """A fresh session for a successful login: a new CSRF token, nothing carried over."""
    request.session.clear()
    request.session["user"] = user.name
    request.session["csrf"] = secrets.token_urlsafe(32)


class LoginThrottle:
    """Counts failed logins per name in Redis (shared by console processes) and delays the next tries."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys

    def _key(self, name: str) -> str:
        return self.keys.console_login_failures(name if _SAFE_NAME.match(name) else "_other_")

    def delay_s(self, name: str) -> float:
        failures = int(self.redis.get(self._key(name)) or 0)
        if failures <= FREE_FAILURES:
            return 0.0
        return min(MAX_DELAY_S, 0.5 * 2 ** (failures - FREE_FAILURES - 1))

    async def wait(self, name: str) -> float:
        delay = self.delay_s(name)
        if delay:
            await asyncio.sleep(delay)
        return delay

    def failed(self, name: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(self._key(name))
        pipe.expire(self._key(name), FAILURE_WINDOW_S)
        pipe.execute()

    def succeeded(self, name: str) -> None:
        self.redis.delete(self._key(name))
