"""Workspaces and memberships, and the access rule every workspace-scoped resource goes through: a non-member
gets 404 (it cannot probe what exists), a member below the needed role gets 403, a server admin passes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from modelyard.auth import Principal
from modelyard.db.base import row_copy
from modelyard.db.reads import AsyncReader, Reader, Row
from modelyard.db.unique import insert_unique
from modelyard.errors import BadRequest, Conflict, Forbidden, NotFound
from modelyard.event import service as events
from modelyard.identity import repository as identity_repository
from modelyard.identity.principals import principals_changed
from modelyard.identity.tables import User
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.workspace import repository
from modelyard.workspace.tables import Membership, Role, Workspace

# Each resource domain registers a function answering how many of its resources a workspace holds, so a
# workspace is not deleted from under them (unless cascade).
ResourceCounter = Callable[[Session, str], dict[str, int]]
RESOURCE_COUNTERS: list[ResourceCounter] = []


def register_resource_counter(counter: ResourceCounter) -> ResourceCounter:
    RESOURCE_COUNTERS.append(counter)
    return counter


@dataclass(frozen=True)
class WorkspaceAccess:
    workspace: Workspace
    role: Role | None
    principal: Principal


def workspace_not_found(name: str) -> NotFound:
    return NotFound(
        f"Workspace '{name}' not found",
        error_code="WORKSPACE_NOT_FOUND",
        solution_msg="Check the name, and that you are a member of the workspace",
    )


def access(session: Session, principal: Principal, name: str, need: Role) -> WorkspaceAccess:
    found = repository.get_with_role(session, name, principal.user_id)
    if found is None:
        raise workspace_not_found(name)
    workspace, role_value = found
    return WorkspaceAccess(workspace, check_role(principal, name, role_value, need), principal)


def read_role(reader: Reader, name: str, user_id: str) -> Row | None:
    """The workspace named `name` as a prebuilt read (its columns plus `role`: the user's, None if not a member);
    None if there is no such workspace."""
    return repository.read_with_role(reader, name, user_id)


async def read_role_async(reader: AsyncReader, name: str, user_id: str) -> Row | None:
    """read_role from the event loop (PostgreSQL)."""
    return await repository.read_with_role_async(reader, name, user_id)


def access_of(workspace: Row, role_value: str | None, principal: Principal, name: str, need: Role) -> WorkspaceAccess:
    """access() from a workspace's row and the caller's role in it (read_role's, or a cache's): the workspace is a
    transient copy of its row (no session holds it, and it has no relationships to load), for callers that only use
    its id and name."""
    role = check_role(principal, name, role_value, need)
    return WorkspaceAccess(row_copy(Workspace, workspace), role, principal)


def has_role(principal: Principal, role: Role | None, need: Role) -> bool:
    """Whether a caller with `role` in a workspace (None: not a member) may do what needs `need` there: admins may
    do anything anywhere."""
    return principal.is_admin or (role is not None and role.rank >= need.rank)


def check_role(principal: Principal, name: str, role_value: str | None, need: Role) -> Role | None:
    """The caller's role in workspace `name` once it is at least `need` (admins pass with any); otherwise 404 for
    non-members, as if the workspace did not exist, and 403 for a lower role."""
    role = Role(role_value) if role_value else None
    if has_role(principal, role, need):
        return role
    if role is None:
        raise workspace_not_found(name)
    raise Forbidden(
        f"Your role in workspace '{name}' is {role.value}; this needs {need.value}",
        error_code="INSUFFICIENT_ROLE",
        solution_msg=f"Ask an admin of '{name}' for the {need.value} role",
    )


def create_workspace(session: Session, principal: Principal, name: str, description: str) -> WorkspaceAccess:
    workspace = Workspace(name=name, description=description, created_by=principal.name, updated_by=principal.name)
    insert_unique(
        session,
        workspace,
        Conflict(
            f"Workspace '{name}' already exists",
            error_code="WORKSPACE_ALREADY_EXISTS",
            solution_msg="Pick another name",
        ),
    )
    session.add(Membership(workspace_id=workspace.id, user_id=principal.user_id, role=Role.ADMIN.value))
    events.record(
        session,
        actor=principal.name,
        action="workspace.created",
        kind="workspace",
        name=name,
        resource_id=workspace.id,
        workspace_id=workspace.id,
        workspace=name,
        changes={"description": description},
    )
    return WorkspaceAccess(workspace, Role.ADMIN, principal)


def list_workspaces(
    session: Session, principal: Principal, query: ListQuery
) -> tuple[list[tuple[Workspace, Role | None]], Pagination, str | None]:
    stmt = repository.workspaces_query(
        None if principal.is_admin else principal.user_id, query.filters.get("name_prefix")
    )
    rows, pagination, token = paginate(
        session,
        stmt,
        query,
        columns={"created_at": Workspace.created_at, "updated_at": Workspace.updated_at, "name": Workspace.name},
        tiebreak=Workspace.id,
    )
    roles = repository.roles_of(session, principal.user_id, [w.id for w in rows])
    return [(w, Role(roles[w.id]) if w.id in roles else None) for w in rows], pagination, token


def update_workspace(session: Session, ws: WorkspaceAccess, changes: dict[str, Any], if_match: str | None) -> Workspace:
    workspace = ws.workspace
    check_if_match(if_match, workspace)
    applied = apply_changes(workspace, changes)
    if applied:
        workspace.updated_by = ws.principal.name
        session.flush()
        principals_changed(session, None)  # caches keep workspace rows
        events.record(
            session,
            actor=ws.principal.name,
            action="workspace.updated",
            kind="workspace",
            name=workspace.name,
            resource_id=workspace.id,
            workspace_id=workspace.id,
            workspace=workspace.name,
            changes=applied,
        )
    return workspace


def delete_workspace(session: Session, ws: WorkspaceAccess, cascade: bool, if_match: str | None) -> None:
    workspace = ws.workspace
    check_if_match(if_match, workspace)
    held: dict[str, int] = {}
    for counter in RESOURCE_COUNTERS:
        held.update({kind: n for kind, n in counter(session, workspace.id).items() if n})
    if held and not cascade:
        listing = ", ".join(f"{n} {kind}" for kind, n in sorted(held.items()))
        raise Conflict(
            f"Workspace '{workspace.name}' still holds resources: {listing}",
            error_code="WORKSPACE_NOT_EMPTY",
            solution_msg="Delete them first, or delete with ?cascade=true to delete them too",
            detail={"resources": held},
        )
    session.delete(workspace)
    principals_changed(session, None)  # caches keep workspace rows and roles in them
    events.record(
        session,
        actor=ws.principal.name,
        action="workspace.deleted",
        kind="workspace",
        name=workspace.name,
        resource_id=workspace.id,
        workspace_id=workspace.id,
        workspace=workspace.name,
        changes={"cascade": cascade, "resources": held},
    )


def _member_event(session: Session, ws: WorkspaceAccess, action: str, user: User, changes: dict[str, Any]) -> None:
    events.record(
        session,
        actor=ws.principal.name,
        action=action,
        kind="member",
        name=user.name,
        resource_id=user.id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


def list_members(
    session: Session, ws: WorkspaceAccess, query: ListQuery
) -> tuple[list[tuple[Membership, User]], Pagination, str | None]:
    stmt = repository.members_query(ws.workspace.id, query.filters.get("role"))
    rows, pagination, token = paginate(
        session,
        stmt.with_only_columns(Membership),
        query,
        columns={"created_at": Membership.created_at, "updated_at": Membership.updated_at},
        tiebreak=Membership.user_id,
    )
    users = identity_repository.users_by_id(session, {m.user_id for m in rows})
    return [(m, users[m.user_id]) for m in rows], pagination, token


def add_member(session: Session, ws: WorkspaceAccess, user_name: str, role: Role) -> tuple[Membership, User]:
    user = identity_repository.get_user_by_name(session, user_name)
    if user is None:
        raise BadRequest(
            f"User '{user_name}' not found",
            error_code="USER_NOT_FOUND",
            solution_msg="Create the user first (POST /v1/users)",
        )
    membership = Membership(workspace_id=ws.workspace.id, user_id=user.id, role=role.value)
    insert_unique(
        session,
        membership,
        Conflict(
            f"User '{user_name}' is already a member of workspace '{ws.workspace.name}'",
            error_code="MEMBER_ALREADY_EXISTS",
            solution_msg=f"Change the role with PUT /v1/workspaces/{ws.workspace.name}/members/{user_name}",
        ),
    )
    principals_changed(session, user.id)
    _member_event(session, ws, "member.added", user, {"role": role.value})
    return membership, user


def _get_member(session: Session, ws: WorkspaceAccess, user_name: str) -> tuple[Membership, User]:
    user = identity_repository.get_user_by_name(session, user_name)
    membership = repository.get_membership(session, ws.workspace.id, user.id) if user else None
    if user is None or membership is None:
        raise NotFound(
            f"User '{user_name}' is not a member of workspace '{ws.workspace.name}'", error_code="MEMBER_NOT_FOUND"
        )
    return membership, user


def _guard_last_admin(session: Session, ws: WorkspaceAccess, membership: Membership) -> None:
    if membership.role == Role.ADMIN.value and repository.count_admins(session, ws.workspace.id) <= 1:
        raise Conflict(
            f"This is the last admin of workspace '{ws.workspace.name}'",
            error_code="LAST_WORKSPACE_ADMIN",
            solution_msg="Make another member admin first",
        )


def set_member_role(session: Session, ws: WorkspaceAccess, user_name: str, role: Role) -> tuple[Membership, User]:
    membership, user = _get_member(session, ws, user_name)
    if membership.role != role.value:
        if role != Role.ADMIN:
            _guard_last_admin(session, ws, membership)
        old = membership.role
        membership.role = role.value
        session.flush()
        principals_changed(session, user.id)
        _member_event(session, ws, "member.updated", user, {"role": [old, role.value]})
    return membership, user


def remove_member(session: Session, ws: WorkspaceAccess, user_name: str) -> None:
    membership, user = _get_member(session, ws, user_name)
    _guard_last_admin(session, ws, membership)
    session.delete(membership)
    principals_changed(session, user.id)
    _member_event(session, ws, "member.removed", user, {"role": membership.role})
