"""The UI's session: a cookie holding the caller's API token (checked on every request exactly as the API checks
a token, so a revoked or expired token stops working at once), the CSRF token derived from it, form bodies, and
the validation of `next` after login (local /ui paths only)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, unquote, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from modelyard.auth import Principal, principal_of_token
from modelyard.errors import Forbidden, Unauthorized
from modelyard.web.rendering import UI_PREFIX, LoginRequired

SESSION_COOKIE = "modelyard_session"
LOGIN_COOKIE = "modelyard_login"  # the login form's own CSRF nonce (there is no session to derive one from yet)
CSRF_FIELD = "csrf_token"
_MAX_COOKIE = 1024


@dataclass(frozen=True)
class UiSession:
    principal: Principal
    csrf_token: str


def _split(cookie: str | None) -> tuple[str, str] | None:
    """The cookie's nonce and token. A session is `<nonce>.<token>`: the nonce, new at each login, makes the CSRF
    token of each session a different one."""
    if not cookie or len(cookie) > _MAX_COOKIE:
        return None
    nonce, dot, token = cookie.partition(".")
    if not dot or not nonce or not token:
        return None
    return nonce, token


def csrf_for(nonce: str, token: str) -> str:
    """The session's CSRF token: a MAC of its nonce keyed by its API token, so it needs no storage (any replica can
    check it) and nobody without the token can make one, while the page that shows it gives the token away."""
    return hmac.new(token.encode(), b"modelyard-ui-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def new_session_cookie(token: str) -> str:
    return f"{secrets.token_urlsafe(16)}.{token}"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=UI_PREFIX,
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=UI_PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")


async def ui_session(request: Request) -> UiSession:
    """The dependency of every page but login: the caller from the session cookie, or LoginRequired."""
    parts = _split(request.cookies.get(SESSION_COOKIE))
    if parts is None:
        raise LoginRequired
    nonce, token = parts
    try:
        principal = await principal_of_token(request, token)
    except Unauthorized as exc:
        raise LoginRequired from exc
    session = UiSession(principal, csrf_for(nonce, token))
    request.state.ui_session = session
    return session


UiUser = Annotated[UiSession, Depends(ui_session)]


def session_csrf(request: Request) -> str | None:
    """The CSRF token of the request's session cookie, whether or not its API token is still valid (for logout)."""
    parts = _split(request.cookies.get(SESSION_COOKIE))
    return csrf_for(*parts) if parts else None


async def form_of(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (what the UI's forms send), first value of each field. The
    request boundary has read it already, within the body size limit."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        return {}
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def csrf_refused() -> Forbidden:
    return Forbidden(
        "The form's CSRF token is missing or does not belong to your session",
        error_code="CSRF_TOKEN_INVALID",
        solution_msg="Reload the page and submit the form again",
    )


def check_csrf(expected: str | None, given: str | None) -> None:
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise csrf_refused()


async def _checked_form(request: Request, session: UiUser) -> dict[str, str]:
    form = await form_of(request)
    check_csrf(session.csrf_token, form.get(CSRF_FIELD))
    return form


CheckedForm = Annotated[dict[str, str], Depends(_checked_form)]


def safe_next(value: str | None) -> str:
    """Where to go after login: `value` if it is a path of the UI on this server, else the UI's home. Refuses
    anything a browser could read as another origin (`//host`, `\\`, a scheme) and the login page itself."""
    home = UI_PREFIX
    if not value or len(value) > 2048 or not value.isascii() or not value.isprintable():
        return home
    if "\\" in value or value.startswith("//"):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return home
    path = parts.path
    if path != UI_PREFIX and not path.startswith(UI_PREFIX + "/"):
        return home
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return home
    if path.rstrip("/") in (UI_PREFIX + "/login", UI_PREFIX + "/logout"):
        return home
    return value
