"""The console's FastAPI application: `create_app(settings)` builds it; nothing runs at import."""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from config.settings import Settings
from console import actions, archive_pages, pages
from console.activity import ActivityThread
from console.auth import Forbidden, NotLoggedIn, secure_cookie
from console.context import STATIC, Console
from console.users import User, parse_users
from console.web import render

SESSION_COOKIE = "cosmos_console"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    settings: Settings,
    *,
    users: dict[str, User] | None = None,
    host: str = "127.0.0.1",
    client: redis.Redis | None = None,
    background: bool = True,
) -> FastAPI:
    """The console for these settings; `users` default to COSMOS_CONSOLE_USERS (UsersError if unset)."""
    if users is None:
        secret = settings.console_users.get_secret_value() if settings.console_users else None
        users = parse_users(secret)
    console = Console.build(settings, users, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = ActivityThread(console.activity) if background else None
        if thread:
            thread.start()
        yield
        if thread:
            thread.stop()

    app = FastAPI(title="cosmos-sms console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    session_secret = (
        settings.console_session_secret.get_secret_value()
        if settings.console_session_secret
        else secrets.token_urlsafe(32)
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=settings.console_session_max_age_s,
        same_site="strict",
        https_only=secure_cookie(settings.console_secure_cookie, host),
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn):
        if request.method != "GET":
            return render(request, "error.html", 403, title="Not logged in", message="Log in first.")
        # The whole deep link, its query too (a search, a page of results), survives the login.
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(wanted, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return render(request, "error.html", 403, title="Forbidden", message=exc.why)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return render(request, "error.html", exc.status_code, title=title, message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return render(request, "error.html", 400, title="Bad request", message=f"{where}: {first.get('msg', '')}")

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError):
        return render(
            request,
            "error.html",
            503,
            title="Redis unavailable",
            message="Redis is not reachable; check REDIS_URL. Nothing was changed.",
        )

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(archive_pages.router)
    return app
