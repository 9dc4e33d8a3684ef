"""HTTP route of a workspace's event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from modelyard.auth import CurrentPrincipal, require_server_admin
from modelyard.event import service
from modelyard.event.schemas import EventFilters, EventRead, ServerEventFilters, to_read
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, api_router
from modelyard.workspace.dependencies import WorkspaceReader

router = api_router("/v1", tags=["events"])


@router.get("/workspaces/{ws}/events")
def list_events(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(EventFilters, sorts=("at",), default_sort="-at"))],
) -> Page[EventRead]:
    rows, pagination, token = service.list_events(session, access.workspace.id, query)
    return Page(data=[to_read(e) for e in rows], pagination=pagination, next_page_token=token)


@router.get("/events")
def list_server_events(
    principal: CurrentPrincipal,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(ServerEventFilters, sorts=("at",), default_sort="-at"))],
) -> Page[EventRead]:
    """Every event of the server, including user and token changes, which belong to no workspace (admins only)."""
    require_server_admin(principal)
    rows, pagination, token = service.list_events(session, None, query)
    return Page(data=[to_read(e) for e in rows], pagination=pagination, next_page_token=token)
