"""HTTP route of a workspace's event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from modelyard.event import service
from modelyard.event.schemas import EventFilters, EventRead, to_read
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, TransactionalRoute
from modelyard.workspace.dependencies import WorkspaceReader

router = APIRouter(prefix="/v1/workspaces/{ws}/events", tags=["events"], route_class=TransactionalRoute)


@router.get("")
def list_events(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(EventFilters, sorts=("at",), default_sort="-at"))],
) -> Page[EventRead]:
    rows, pagination, token = service.list_events(session, access.workspace.id, query)
    return Page(data=[to_read(e) for e in rows], pagination=pagination, next_page_token=token)
