"""The SDK's transport: one httpx client (owned, or injected such as FastAPI's TestClient), the token, and the
mapping of error answers to the exceptions of `modelyard.client.errors`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from modelyard import __version__
from modelyard.client.errors import ModelyardError, TransportError, error_class

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = f"modelyard-python/{__version__}"
_AUTH_HEADERS = ("authorization", "x-auth-token", "x-api-key")


class Resource(dict[str, Any]):
    """One resource as the server answered it: a plain dict of its JSON fields, plus the answer's `ETag`
    (None when the answer had none), to pass back as `if_match=`."""

    etag: str | None

    def __init__(self, data: Mapping[str, Any] | None = None, etag: str | None = None) -> None:
        super().__init__(data or {})
        self.etag = etag


def default_url() -> str:
    return os.environ.get("MODELYARD_URL") or DEFAULT_URL


def default_token() -> str | None:
    """MODELYARD_TOKEN, else the contents of $MODELYARD_HOME/admin-token (MODELYARD_HOME: ~/.modelyard)."""
    token = os.environ.get("MODELYARD_TOKEN", "").strip()
    if token:
        return token
    home = Path(os.environ.get("MODELYARD_HOME") or "~/.modelyard").expanduser()
    try:
        token = (home / "admin-token").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return token or None


def segment(value: str) -> str:
    """A name as one URL path segment: percent-encoded, with '.' and '..' kept from being read as dot segments."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def query_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop None values and spell booleans and timestamps the way the server reads them."""
    return {k: query_value(v) for k, v in (params or {}).items() if v is not None}


def error_from_response(response: httpx.Response) -> ModelyardError:
    """The typed exception for a non-2xx answer; tolerates a body that is not the server's error JSON."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error_code"), str):
        error_code = body["error_code"]
        error_msg = str(body.get("error_msg") or response.reason_phrase or f"HTTP {status}")
        solution_msg = str(body.get("solution_msg") or "")
        detail = body.get("detail")
    else:
        error_code = f"HTTP_{status}"
        text = response.text.strip()
        error_msg = text[:500] if text else (response.reason_phrase or f"HTTP {status}")
        solution_msg = ""
        detail = body
    return error_class(status)(
        error_msg,
        status_code=status,
        error_code=error_code,
        solution_msg=solution_msg,
        detail=detail,
        request_id=request_id,
    )


class HTTPTransport:
    """Sends requests under `/v1` with the token, and turns every failure into a `ModelyardError`."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._owns_client = http_client is None
        self.token = token
        if http_client is None:
            self.base_url = (base_url or default_url()).rstrip("/")
            self.prefix = ""
            self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
            if self.token is None:
                self.token = default_token()
            return
        self.http = http_client
        if str(http_client.base_url):
            # The injected client knows where the server is; only a path in base_url still applies.
            self.prefix = urlsplit(base_url).path.rstrip("/") if base_url else ""
            self.base_url = str(http_client.base_url.join(self.prefix or "/")).rstrip("/")
        else:
            self.base_url = (base_url or default_url()).rstrip("/")
            self.prefix = self.base_url
        if self.token is None and not any(h in http_client.headers for h in _AUTH_HEADERS):
            self.token = default_token()

    def close(self) -> None:
        if self._owns_client:
            self.http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request; a non-2xx answer raises its typed error, a transport failure `TransportError`.

        `content` is a raw body (bytes, or an iterable of chunks sent as they come). With `stream`, the answer's body
        is not read: iterate it with `iter_bytes()` and close the response."""
        sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            sent_headers["Authorization"] = f"Bearer {self.token}"
        sent_headers.update({k: v for k, v in (headers or {}).items() if v is not None})
        url = self.prefix + path
        try:
            request = self.http.build_request(
                method, url, params=query_params(params), json=json, content=content, headers=sent_headers
            )
            response = self.http.send(request, stream=stream)
        except httpx.RequestError as exc:  # connection, timeout, protocol, too many redirects
            raise self.transport_error(method, path, exc) from exc
        if not response.is_success:
            if stream:
                try:
                    response.read()  # the error body is small
                except httpx.RequestError:
                    pass
                finally:
                    response.close()
            raise error_from_response(response)
        return response

    def transport_error(self, method: str, path: str, exc: httpx.RequestError) -> TransportError:
        return TransportError(
            f"{method} {self.base_url}{path} failed: {str(exc) or type(exc).__name__}",
            error_code="TRANSPORT_ERROR",
            solution_msg="Check that the server is running and that the URL (MODELYARD_URL or --url) is right",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Resource:
        """A request whose answer is one JSON object."""
        response = self.send(method, path, params=params, json=json, content=content, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ModelyardError(
                f"{method} {self.base_url}{path} answered {response.status_code} without a JSON object",
                status_code=response.status_code,
                error_code="INVALID_RESPONSE",
                solution_msg="Check that the URL points at a modelyard server",
                request_id=response.headers.get("x-request-id"),
            )
        return Resource(body, response.headers.get("etag"))
