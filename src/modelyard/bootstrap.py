"""First start: the user `admin`, the workspace `default`, and an admin token written to
`$MODELYARD_HOME/admin-token` (mode 0600). Runs only while the database has no users."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelyard import auth
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.event import service as events
from modelyard.identity.tables import ApiToken, User
from modelyard.workspace.tables import Membership, Role, Workspace

ADMIN_USER = "admin"
DEFAULT_WORKSPACE = "default"


def write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_admin(db: Database, settings: Settings) -> str | None:
    """Create the first admin if there is none; return the new token's secret (None when already set up)."""
    with db.session(write=True) as session:
        if session.scalar(sa.select(sa.func.count()).select_from(User)):
            return None
        user = User(name=ADMIN_USER, display_name="Administrator", is_admin=True)
        workspace = Workspace(
            name=DEFAULT_WORKSPACE, description="The default workspace", created_by=ADMIN_USER, updated_by=ADMIN_USER
        )
        session.add_all([user, workspace])
        session.flush()
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=Role.ADMIN.value))
        secret = auth.new_token_secret()
        token = ApiToken(
            user_id=user.id, name="admin-token", token_hash=auth.hash_token(secret), token_prefix=secret[:12]
        )
        session.add(token)
        events.record(
            session,
            actor="system",
            action="workspace.created",
            kind="workspace",
            name=DEFAULT_WORKSPACE,
            resource_id=workspace.id,
            workspace_id=workspace.id,
            workspace=DEFAULT_WORKSPACE,
        )
        try:
            session.commit()
        except IntegrityError:
            # Another process bootstrapped at the same moment.
            session.rollback()
            return None
    write_secret(settings.admin_token_path, secret)
    return secret
