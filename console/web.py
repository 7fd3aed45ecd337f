"""Request helpers shared by the console's routes: the context, the user, rendering, guards."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from console.auth import Forbidden, check_csrf, csrf_token, session_user
from console.context import Console
from console.oncall import banners
from console.users import User


def console_of(request: Request) -> Console:
    return request.app.state.console


def user_of(request: Request) -> User:
    """The logged-in user (NotLoggedIn otherwise); a FastAPI dependency."""
    return session_user(request, console_of(request).users)


async def operator_of(request: Request) -> User:
    """For every POST that changes something: a valid CSRF token first, then the operator role."""
    user = user_of(request)
    await check_csrf(request)
    if not user.can_act:
        raise Forbidden("viewers cannot act; ask an operator")
    return user


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    console = console_of(request)
    user = context.pop("user", None)
    if user is None:
        try:
            user = user_of(request)
        except Exception:
            user = None
    if user is not None and "banners" not in context:
        context["banners"] = banners(console)
    return console.templates.TemplateResponse(
        request, template, {"user": user, "csrf": csrf_token(request), **context}, status_code=status
    )
