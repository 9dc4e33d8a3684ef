"""SQL for workspaces and memberships."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from modelyard.db.match import starts_with
from modelyard.db.reads import AsyncReader, Read, Reader, Row
from modelyard.identity.tables import User
from modelyard.workspace.tables import Membership, Workspace

# Built once: every workspace-scoped request runs this, and building a statement costs more than running it.
_WITH_ROLE = (
    sa.select(Workspace, Membership.role)
    .outerjoin(
        Membership,
        sa.and_(Membership.workspace_id == Workspace.id, Membership.user_id == sa.bindparam("user_id")),
    )
    .where(Workspace.name == sa.bindparam("name"))
)


_READ_WITH_ROLE = Read(
    sa.select(*(c.label(c.name) for c in Workspace.__table__.c), Membership.role.label("role"))
    .select_from(Workspace)
    .outerjoin(
        Membership,
        sa.and_(Membership.workspace_id == Workspace.id, Membership.user_id == sa.bindparam("user_id")),
    )
    .where(Workspace.name == sa.bindparam("name"))
)


def read_with_role(reader: Reader, name: str, user_id: str) -> Row | None:
    """get_with_role as a prebuilt read: the workspace's columns plus `role`."""
    return reader.first(_READ_WITH_ROLE, name=name, user_id=user_id)


async def read_with_role_async(reader: AsyncReader, name: str, user_id: str) -> Row | None:
    return await reader.first(_READ_WITH_ROLE, name=name, user_id=user_id)


def get_with_role(session: Session, name: str, user_id: str) -> tuple[Workspace, str | None] | None:
    """The workspace and the user's role in it (None when not a member), in one query."""
    row = session.execute(_WITH_ROLE, {"name": name, "user_id": user_id}).first()
    return (row[0], row[1]) if row else None


def workspaces_query(user_id: str | None, name_prefix: str | None) -> sa.Select[Workspace]:
    """Workspaces visible to a user (all of them when user_id is None)."""
    stmt = sa.select(Workspace)
    if user_id is not None:
        stmt = stmt.join(Membership, Membership.workspace_id == Workspace.id).where(Membership.user_id == user_id)
    if name_prefix:
        stmt = stmt.where(starts_with(Workspace.name, name_prefix))
    return stmt


def roles_of(session: Session, user_id: str, workspace_ids: list[str]) -> dict[str, str]:
    if not workspace_ids:
        return {}
    rows = session.execute(
        sa.select(Membership.workspace_id, Membership.role).where(
            Membership.user_id == user_id, Membership.workspace_id.in_(workspace_ids)
        )
    )
    return {ws_id: role for ws_id, role in rows}


def get_membership(session: Session, workspace_id: str, user_id: str) -> Membership | None:
    return session.get(Membership, (workspace_id, user_id))


def members_query(workspace_id: str, role: str | None) -> sa.Select[Membership, User]:
    stmt = sa.select(Membership, User).join(User, User.id == Membership.user_id)
    stmt = stmt.where(Membership.workspace_id == workspace_id)
    if role is not None:
        stmt = stmt.where(Membership.role == role)
    return stmt


def count_admins(session: Session, workspace_id: str) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Membership)
            .where(Membership.workspace_id == workspace_id, Membership.role == "admin")
        )
        or 0
    )


def memberships_of_user(session: Session, user_id: str) -> list[tuple[str, str]]:
    rows = session.execute(
        sa.select(Workspace.name, Membership.role)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    )
    return [(name, role) for name, role in rows]


def sole_admin_workspaces(session: Session, user_id: str) -> list[str]:
    """Names of the workspaces whose only admin is this user."""
    other = aliased(Membership)
    other_admin = (
        sa.select(other.user_id)
        .where(other.workspace_id == Workspace.id, other.role == "admin", other.user_id != user_id)
        .exists()
    )
    mine = sa.and_(Membership.workspace_id == Workspace.id, Membership.user_id == user_id, Membership.role == "admin")
    stmt = sa.select(Workspace.name).join(Membership, mine).where(~other_admin).order_by(Workspace.name)
    return list(session.scalars(stmt))
