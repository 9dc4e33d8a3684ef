"""Turning pages into HTML answers: the Jinja2 environment (autoescaped), the headers every UI answer carries,
the route class of the UI, and the HTML error page that stands in for the JSON error body under `/ui`."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from modelyard.kit.routing import TransactionalRoute

if TYPE_CHECKING:
    import jinja2

errlog = logging.getLogger("modelyard.error")

UI_PREFIX = "/ui"

# No script runs in the UI and nothing of it may be framed; styles and images come from /ui/static only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def is_ui_path(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def url(*segments: str, **query: str | None) -> str:
    """A UI path from raw segments (each percent-encoded whole: a name may hold any letter) and query parameters
    (empty ones left out)."""
    path = UI_PREFIX + "".join("/" + quote(str(s), safe="") for s in segments)
    given = {k: v for k, v in query.items() if v}
    return path + ("?" + urlencode(given) if given else "")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _size(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover (the loop always returns)


@functools.cache
def _environment() -> jinja2.Environment:
    """Made at the first page, not at import: Jinja2's import is about 25 ms of every server's cold start, which
    serves the API first."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelyard.web", "templates"),
        autoescape=True,  # every template is HTML: whatever a user typed is text, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = _json
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.globals["url"] = url
    return env


def render(request: Request, page: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template `page` with `context`, plus what the layout needs (the caller and the session's CSRF token
    when known). Pages that show a caller's data are never stored by caches."""
    context.setdefault("session", getattr(request.state, "ui_session", None))
    context.setdefault("path", request.url.path)
    html = _environment().get_template(page).render(**context)
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    secured(response)
    return response


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class LoginRequired(Exception):
    """No valid session: the UI answers with a redirect to its login page (for a GET, back to the page after)."""


def login_redirect(request: Request) -> RedirectResponse:
    target = url("login")
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = url("login", next=here)
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    secured(response)
    return response


class UiRoute(TransactionalRoute):
    """A route of the UI: the API's request boundary (one session, one commit, the body size limit), the UI's
    headers on every answer, and the login redirect for a request without a valid session."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def ui(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except Exception as exc:
                if _handled_by_app(request, exc):
                    raise  # the app's handler answers, as an HTML page under /ui (install_html_errors)
                return _internal_error(request)
            return secured(response)

        return ui


def _handled_by_app(request: Request, exc: Exception) -> bool:
    return any(isinstance(cls, type) and isinstance(exc, cls) for cls in request.app.exception_handlers)


def _internal_error(request: Request) -> Response:
    """The UI's 500: logged with its request id, as the app's last-resort answer is, and shown without details."""
    request_id = str(getattr(request.state, "request_id", ""))
    errlog.exception("unhandled error", extra={"fields": {"request_id": request_id}})
    return render(
        request,
        "error.html",
        status_code=500,
        title="Internal error",
        status=500,
        error_code="INTERNAL_ERROR",
        error_msg=f"Internal server error (request id {request_id})",
        solution_msg="Retry later; if it persists, report the request id to the operator",
        problems=[],
    )


# -- errors ----------------------------------------------------------------------------------------------------------

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Changed meanwhile",
    413: "Too large",
    422: "Invalid request",
    503: "Unavailable",
}
# Headers of an error answer that still mean something on its HTML page.
_KEPT_HEADERS = ("allow", "retry-after")


def error_page(request: Request, answer: Response) -> Response:
    """The HTML page of an error answer that the API's handlers built as JSON: same status, same message."""
    try:
        body = json.loads(bytes(answer.body))
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = answer.status_code
    response = render(
        request,
        "error.html",
        status_code=status,
        title=_TITLES.get(status, "Error"),
        status=status,
        error_code=str(body.get("error_code") or ""),
        error_msg=str(body.get("error_msg") or ""),
        solution_msg=str(body.get("solution_msg") or ""),
        problems=_problems(body.get("detail")),
    )
    for name in _KEPT_HEADERS:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    return response


def _problems(detail: Any) -> list[str]:
    """A 422's list of {loc, msg} as lines for people."""
    if not isinstance(detail, list):
        return []
    lines = []
    for item in detail:
        if isinstance(item, dict) and "msg" in item:
            where = ".".join(str(p) for p in item.get("loc") or [])
            lines.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return lines


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _html_under_ui(handler: Handler) -> Callable[[Request, Exception], Awaitable[Any]]:
    async def handle(request: Request, exc: Exception) -> Any:
        answer = handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, Response) and request.scope["type"] == "http" and is_ui_path(request.url.path):
            return error_page(request, answer)
        return answer

    return handle


def install_html_errors(app: FastAPI) -> None:
    """Answer errors under /ui with the HTML error page, built from what the app's own handlers answer (so status
    and message are the API's); every other path keeps the JSON error body untouched. Call after the app's error
    handlers are installed."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _html_under_ui(handler)
