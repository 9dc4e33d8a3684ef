"""The resource groups of `Client`: one small class per noun of the API, each a thin map from method to route."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._pager import Pager


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key is not None else {}


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


def _timestamp(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class _Group:
    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport


class Workspaces(_Group):
    """`/v1/workspaces`: the workspaces the caller belongs to (every one, for a server admin)."""

    def create(self, name: str, description: str = "", *, idempotency_key: str | None = None) -> Resource:
        return self._http.request(
            "POST",
            "/v1/workspaces",
            json={"name": name, "description": description},
            headers=_idempotency(idempotency_key),
        )

    def list(
        self,
        *,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        params = {"name_prefix": name_prefix, "sort": sort, **filters}
        return Pager(self._http, "/v1/workspaces", params, page_size)

    def get(self, name: str) -> Resource:
        return self._http.request("GET", f"/v1/workspaces/{segment(name)}")

    def update(self, name: str, *, description: str | None = None, if_match: str | None = None) -> Resource:
        """Change the fields given (not None); `if_match` is an ETag from `get()` (412 if it changed since)."""
        body = {"description": description} if description is not None else {}
        return self._http.request("PATCH", f"/v1/workspaces/{segment(name)}", json=body, headers=_if_match(if_match))

    def delete(self, name: str, *, cascade: bool = False, if_match: str | None = None) -> None:
        """Delete the workspace; with `cascade`, also every resource it holds (otherwise those make it a 409)."""
        params = {"cascade": True} if cascade else None
        self._http.send("DELETE", f"/v1/workspaces/{segment(name)}", params=params, headers=_if_match(if_match))


class Members(_Group):
    """`/v1/workspaces/{ws}/members`: who may do what in a workspace (roles viewer, editor, admin)."""

    def list(
        self, workspace: str, *, role: str | None = None, sort: str | None = None, page_size: int | None = None
    ) -> Pager:
        params = {"role": role, "sort": sort}
        return Pager(self._http, f"/v1/workspaces/{segment(workspace)}/members", params, page_size)

    def add(self, workspace: str, user: str, role: str, *, idempotency_key: str | None = None) -> Resource:
        return self._http.request(
            "POST",
            f"/v1/workspaces/{segment(workspace)}/members",
            json={"user": user, "role": role},
            headers=_idempotency(idempotency_key),
        )

    def set_role(self, workspace: str, user: str, role: str) -> Resource:
        return self._http.request(
            "PUT", f"/v1/workspaces/{segment(workspace)}/members/{segment(user)}", json={"role": role}
        )

    def remove(self, workspace: str, user: str) -> None:
        self._http.send("DELETE", f"/v1/workspaces/{segment(workspace)}/members/{segment(user)}")


class Users(_Group):
    """`/v1/users`: server accounts (server admins only, except reading oneself)."""

    def create(
        self,
        name: str,
        display_name: str = "",
        is_admin: bool = False,
        *,
        idempotency_key: str | None = None,
    ) -> Resource:
        return self._http.request(
            "POST",
            "/v1/users",
            json={"name": name, "display_name": display_name, "is_admin": is_admin},
            headers=_idempotency(idempotency_key),
        )

    def list(
        self,
        *,
        name_prefix: str | None = None,
        is_admin: bool | None = None,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Pager:
        params = {"name_prefix": name_prefix, "is_admin": is_admin, "sort": sort}
        return Pager(self._http, "/v1/users", params, page_size)

    def get(self, name: str) -> Resource:
        return self._http.request("GET", f"/v1/users/{segment(name)}")

    def update(
        self,
        name: str,
        *,
        display_name: str | None = None,
        is_admin: bool | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None)."""
        body: dict[str, Any] = {}
        if display_name is not None:
            body["display_name"] = display_name
        if is_admin is not None:
            body["is_admin"] = is_admin
        return self._http.request("PATCH", f"/v1/users/{segment(name)}", json=body, headers=_if_match(if_match))

    def delete(self, name: str, *, if_match: str | None = None) -> None:
        self._http.send("DELETE", f"/v1/users/{segment(name)}", headers=_if_match(if_match))


class Tokens(_Group):
    """`/v1/tokens`: API tokens. The secret is in the answer of `create()` only (key `token`)."""

    def create(
        self,
        name: str,
        user: str | None = None,
        expires_at: datetime | str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Resource:
        """A new token for `user` (default: the caller); `expires_at` must carry a time zone."""
        body: dict[str, Any] = {"name": name}
        if user is not None:
            body["user"] = user
        if expires_at is not None:
            body["expires_at"] = _timestamp(expires_at)
        return self._http.request("POST", "/v1/tokens", json=body, headers=_idempotency(idempotency_key))

    def list(self, user: str | None = None, *, sort: str | None = None, page_size: int | None = None) -> Pager:
        """The caller's tokens; for a server admin every token, or those of `user`."""
        return Pager(self._http, "/v1/tokens", {"user": user, "sort": sort}, page_size)

    def revoke(self, token_id: str) -> None:
        self._http.send("DELETE", f"/v1/tokens/{segment(token_id)}")


class Events(_Group):
    """`/v1/workspaces/{ws}/events`: the audit log of a workspace, newest first by default."""

    def list(
        self,
        workspace: str,
        action: str | None = None,
        resource_kind: str | None = None,
        since: datetime | str | None = None,
        *,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Pager:
        """`since` must carry a time zone (e.g. `datetime.now(UTC)` or "2025-01-01T00:00:00Z")."""
        params = {"action": action, "resource_kind": resource_kind, "since": _timestamp(since), "sort": sort}
        return Pager(self._http, f"/v1/workspaces/{segment(workspace)}/events", params, page_size)
