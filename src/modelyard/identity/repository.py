"""SQL for users and tokens."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.db.match import starts_with
from modelyard.db.reads import Read, Reader, Row
from modelyard.identity.tables import ApiToken, User

# A request whose token is not in the principal cache runs it, outside the request's session (a write's
# transaction, and on SQLite the write lock, is not taken for it).
_FIND_TOKEN = Read(
    sa.select(
        ApiToken.id.label("token_id"),
        ApiToken.name.label("token_name"),
        ApiToken.expires_at.label("expires_at"),
        User.id.label("user_id"),
        User.name.label("user_name"),
        User.is_admin.label("is_admin"),
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == sa.bindparam("token_hash"))
)


def find_token(reader: Reader, token_hash: str) -> Row | None:
    """The token (token_id, token_name, expires_at) and its user (user_id, user_name, is_admin)."""
    return reader.first(_FIND_TOKEN, token_hash=token_hash)


def get_user_by_name(session: Session, name: str) -> User | None:
    return session.scalar(sa.select(User).where(User.name == name))


def users_query(name_prefix: str | None = None, is_admin: bool | None = None) -> sa.Select[User]:
    stmt = sa.select(User)
    if name_prefix:
        stmt = stmt.where(starts_with(User.name, name_prefix))
    if is_admin is not None:
        stmt = stmt.where(User.is_admin == is_admin)
    return stmt


def tokens_query(user_id: str | None) -> sa.Select[ApiToken]:
    stmt = sa.select(ApiToken)
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return stmt


def count_admins(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User).where(User.is_admin.is_(True))) or 0


def users_by_id(session: Session, ids: set[str]) -> dict[str, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(ids)))}
