"""HTTP routes of workspaces and members."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, status

from modelyard.auth import CurrentPrincipal
from modelyard.identity.tables import User
from modelyard.kit.etag import etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, api_router
from modelyard.workspace import service
from modelyard.workspace.dependencies import FreshWorkspaceReader, WorkspaceAdmin, WorkspaceReader
from modelyard.workspace.schemas import (
    MemberCreate,
    MemberFilters,
    MemberRead,
    MemberUpdate,
    WorkspaceCreate,
    WorkspaceFilters,
    WorkspaceRead,
    WorkspaceUpdate,
)
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Membership, Role

router = api_router("/v1/workspaces", tags=["workspaces"])


def _read(access: WorkspaceAccess) -> WorkspaceRead:
    out = WorkspaceRead.model_validate(access.workspace)
    out.role = access.role
    return out


@router.post("", status_code=status.HTTP_201_CREATED)
def create_workspace(
    body: WorkspaceCreate, principal: CurrentPrincipal, session: DbSession, response: Response
) -> WorkspaceRead:
    access = service.create_workspace(session, principal, body.name, body.description)
    session.flush()
    response.headers["ETag"] = etag_of(access.workspace)
    return _read(access)


@router.get("")
def list_workspaces(
    principal: CurrentPrincipal,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(WorkspaceFilters))],
) -> Page[WorkspaceRead]:
    rows, pagination, token = service.list_workspaces(session, principal, query)
    data = [_read(WorkspaceAccess(ws, role, principal)) for ws, role in rows]
    return Page(data=data, pagination=pagination, next_page_token=token)


@router.get("/{ws}")
def get_workspace(access: FreshWorkspaceReader, response: Response) -> WorkspaceRead:
    response.headers["ETag"] = etag_of(access.workspace)
    return _read(access)


@router.patch("/{ws}")
def update_workspace(
    body: WorkspaceUpdate, access: WorkspaceAdmin, session: DbSession, response: Response, if_match: IfMatch = None
) -> WorkspaceRead:
    workspace = service.update_workspace(session, access, body.model_dump(exclude_unset=True), if_match)
    response.headers["ETag"] = etag_of(workspace)
    return _read(access)


@router.delete("/{ws}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workspace(
    access: WorkspaceAdmin,
    session: DbSession,
    cascade: Annotated[bool, Query(description="Also delete every resource the workspace holds")] = False,
    if_match: IfMatch = None,
) -> None:
    service.delete_workspace(session, access, cascade, if_match)


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user=user.name,
        display_name=user.display_name,
        role=Role(membership.role),
        created_at=membership.created_at,
        updated_at=membership.updated_at,
    )


@router.get("/{ws}/members", tags=["members"])
def list_members(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(MemberFilters, sorts=("created_at", "updated_at")))],
) -> Page[MemberRead]:
    rows, pagination, token = service.list_members(session, access, query)
    return Page(data=[_member(m, u) for m, u in rows], pagination=pagination, next_page_token=token)


@router.post("/{ws}/members", status_code=status.HTTP_201_CREATED, tags=["members"])
def add_member(body: MemberCreate, access: WorkspaceAdmin, session: DbSession) -> MemberRead:
    membership, user = service.add_member(session, access, body.user, body.role)
    session.flush()
    return _member(membership, user)


@router.put("/{ws}/members/{user}", tags=["members"])
def set_member_role(user: str, body: MemberUpdate, access: WorkspaceAdmin, session: DbSession) -> MemberRead:
    membership, member = service.set_member_role(session, access, user, body.role)
    return _member(membership, member)


@router.delete("/{ws}/members/{user}", status_code=status.HTTP_204_NO_CONTENT, tags=["members"])
def remove_member(user: str, access: WorkspaceAdmin, session: DbSession) -> None:
    service.remove_member(session, access, user)
