"""FastAPI dependencies that resolve `{ws}` in a path to the workspace and check the caller's role. Every
workspace-scoped router uses these, so the 404-for-non-members rule lives in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from modelyard.auth import CurrentPrincipal
from modelyard.kit.routing import DbSession, run_db
from modelyard.workspace import service
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

WorkspaceName = Annotated[str, Path(description="Workspace name", max_length=255)]


async def _reader(
    ws: WorkspaceName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> WorkspaceAccess:
    return await run_db(request, service.access, session, principal, ws, Role.VIEWER)


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
