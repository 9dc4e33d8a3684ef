"""FastAPI dependencies that resolve `{ws}` in a path to the workspace and check the caller's role. Every
workspace-scoped router uses these, so the 404-for-non-members rule lives in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from modelyard.auth import CurrentPrincipal, Principal
from modelyard.kit.routing import SAFE_METHODS, DbSession, request_session, run_db
from modelyard.workspace import service
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

WorkspaceName = Annotated[str, Path(description="Workspace name", max_length=255)]


def _read_access(request: Request, principal: Principal, ws: str) -> WorkspaceAccess:
    with request.app.state.ctx.db.reading() as reader:
        return service.read_access(reader, principal, ws)


async def _reader(ws: WorkspaceName, principal: CurrentPrincipal, request: Request) -> WorkspaceAccess:
    # A request that only reads checks access with a prebuilt read and opens no session for it.
    if request.method in SAFE_METHODS:
        return await run_db(request, _read_access, request, principal, ws)
    return await run_db(request, service.access, request_session(request), principal, ws, Role.VIEWER)


async def _editor(
    ws: WorkspaceName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> WorkspaceAccess:
    return await run_db(request, service.access, session, principal, ws, Role.EDITOR)


async def _admin(
    ws: WorkspaceName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> WorkspaceAccess:
    return await run_db(request, service.access, session, principal, ws, Role.ADMIN)


WorkspaceReader = Annotated[WorkspaceAccess, Depends(_reader)]
WorkspaceEditor = Annotated[WorkspaceAccess, Depends(_editor)]
WorkspaceAdmin = Annotated[WorkspaceAccess, Depends(_admin)]
