"""FastAPI dependencies that resolve `{ws}` in a path to the workspace and check the caller's role. Every
workspace-scoped router uses these, so the 404-for-non-members rule lives in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from modelyard.auth import CurrentPrincipal, current_principal
from modelyard.identity.principals import PrincipalCache
from modelyard.kit.routing import DbSession, run_db, run_prebuilt
from modelyard.workspace import service
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

WorkspaceName = Annotated[str, Path(description="Workspace name", max_length=255)]


# Readers and editors are checked with a prebuilt read on the event loop, outside the request's session: a read
# opens none, and a write's transaction (on SQLite, the write lock) starts at its first change instead of at the
# check. The services use only the workspace's id and name at these roles; admins, who may change or delete the
# workspace itself, get the row from the session. The caller is resolved here rather than declared as a
# sub-dependency: every workspace-scoped request goes through these, and FastAPI's resolution of each dependency
# costs more than the cached lookup it would run (current_principal remembers the caller on the request).
async def _reader(ws: WorkspaceName, request: Request) -> WorkspaceAccess:
    return await access_at(request, ws, Role.VIEWER)


async def _fresh_reader(ws: WorkspaceName, request: Request) -> WorkspaceAccess:
    return await access_at(request, ws, Role.VIEWER, kept=False)


async def _editor(ws: WorkspaceName, request: Request) -> WorkspaceAccess:
    return await access_at(request, ws, Role.EDITOR)


async def access_at(request: Request, ws: str, role: Role, *, kept: bool = True) -> WorkspaceAccess:
    """The caller's access to workspace `ws` if they have `role` there (a viewer's or an editor's): what the reader
    and editor dependencies give, for a fast path (kit.routing.fast_path) too.

    The workspace and the caller's role in it are kept in the token cache (identity.principals), which drops them the
    moment a membership of the caller, or the workspace itself, changes: on PostgreSQL the read was one of a create's
    two round trips, and about a fifth of its cost (bench/RESULTS.md). `kept=False` reads the workspace anew, for
    an answer that shows more of it than its id and name (another process's change reaches this one's cache a few
    milliseconds after its commit)."""
    principal = await current_principal(request)
    cache: PrincipalCache = request.app.state.ctx.principals
    found = cache.role(principal.user_id, ws) if kept else None
    if found is not None:
        return service.access_of(found.workspace, found.role, principal, ws, role)
    generation = cache.generation()
    row = await run_prebuilt(request, service.read_role, service.read_role_async, ws, principal.user_id)
    if row is None:
        raise service.workspace_not_found(ws)
    role_value = row.pop("role")
    cache.put_role(principal.user_id, ws, row, role_value, generation)
    return service.access_of(row, role_value, principal, ws, role)


async def _admin(
    ws: WorkspaceName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> WorkspaceAccess:
    return await run_db(request, service.access, session, principal, ws, Role.ADMIN)


WorkspaceReader = Annotated[WorkspaceAccess, Depends(_reader)]
FreshWorkspaceReader = Annotated[WorkspaceAccess, Depends(_fresh_reader)]  # the workspace's row read anew
WorkspaceEditor = Annotated[WorkspaceAccess, Depends(_editor)]
WorkspaceAdmin = Annotated[WorkspaceAccess, Depends(_admin)]
