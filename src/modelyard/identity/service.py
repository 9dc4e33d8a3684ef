"""Users and tokens: the rules (who may do what, uniqueness, the last admin) in one place for every router."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from modelyard import auth
from modelyard.auth import Principal
from modelyard.db.base import utcnow
from modelyard.db.unique import insert_unique
from modelyard.errors import Conflict, Forbidden, NotFound, validation_error
from modelyard.event import service as events
from modelyard.identity import repository
from modelyard.identity.principals import principals_changed
from modelyard.identity.tables import ApiToken, User
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.workspace import repository as workspace_repository


def _user_not_found(name: str) -> NotFound:
    return NotFound(f"User '{name}' not found", error_code="USER_NOT_FOUND")


def get_user(session: Session, name: str) -> User:
    user = repository.get_user_by_name(session, name)
    if user is None:
        raise _user_not_found(name)
    return user


def create_user(session: Session, principal: Principal, name: str, display_name: str, is_admin: bool) -> User:
    auth.require_server_admin(principal)
    user = User(name=name, display_name=display_name, is_admin=is_admin)
    insert_unique(
        session,
        user,
        Conflict(
            f"User '{name}' already exists",
            error_code="USER_ALREADY_EXISTS",
            solution_msg="Pick another name",
        ),
    )
    events.record(
        session,
        actor=principal.name,
        action="user.created",
        kind="user",
        name=name,
        resource_id=user.id,
        changes={"is_admin": is_admin},
    )
    return user


def list_users(session: Session, principal: Principal, query: ListQuery) -> tuple[list[User], Pagination, str | None]:
    auth.require_server_admin(principal)
    stmt = repository.users_query(query.filters.get("name_prefix"), query.filters.get("is_admin"))
    return paginate(
        session,
        stmt,
        query,
        columns={"created_at": User.created_at, "updated_at": User.updated_at, "name": User.name},
        tiebreak=User.id,
    )


def read_user(session: Session, principal: Principal, name: str) -> User:
    if not principal.is_admin and principal.name != name:
        auth.require_server_admin(principal)
    return get_user(session, name)


def _guard_last_admin(session: Session, user: User) -> None:
    if user.is_admin and repository.count_admins(session) <= 1:
        raise Conflict(
            f"User '{user.name}' is the last server admin",
            error_code="LAST_ADMIN",
            solution_msg="Make another user a server admin first",
        )


def update_user(
    session: Session, principal: Principal, name: str, changes: dict[str, Any], if_match: str | None
) -> User:
    auth.require_server_admin(principal)
    user = get_user(session, name)
    check_if_match(if_match, user)
    if changes.get("is_admin") is False:
        _guard_last_admin(session, user)
    applied = apply_changes(user, changes)
    if applied:
        session.flush()
        principals_changed(session, user.id)
        events.record(
            session,
            actor=principal.name,
            action="user.updated",
            kind="user",
            name=name,
            resource_id=user.id,
            changes=applied,
        )
    return user


def delete_user(session: Session, principal: Principal, name: str, if_match: str | None) -> None:
    auth.require_server_admin(principal)
    user = get_user(session, name)
    check_if_match(if_match, user)
    _guard_last_admin(session, user)
    orphaned = workspace_repository.sole_admin_workspaces(session, user.id)
    if orphaned:
        raise Conflict(
            f"User '{name}' is the only admin of workspace(s) {', '.join(orphaned)}",
            error_code="LAST_WORKSPACE_ADMIN",
            solution_msg="Make another member admin of those workspaces first",
            detail={"workspaces": orphaned},
        )
    session.delete(user)
    principals_changed(session, user.id)
    events.record(session, actor=principal.name, action="user.deleted", kind="user", name=name, resource_id=user.id)


def create_token(
    session: Session, principal: Principal, name: str, user_name: str | None, expires_at: datetime | None
) -> tuple[ApiToken, User, str]:
    if user_name is None or user_name == principal.name:
        user = get_user(session, principal.name)
    else:
        if not principal.is_admin:
            raise Forbidden("Only server admins may create tokens for other users", error_code="ADMIN_REQUIRED")
        user = get_user(session, user_name)
    if expires_at is not None and expires_at <= utcnow():
        raise validation_error(["body", "expires_at"], "expires_at must be in the future")
    secret = auth.new_token_secret()
    token = ApiToken(
        user_id=user.id, name=name, token_hash=auth.hash_token(secret), token_prefix=secret[:12], expires_at=expires_at
    )
    session.add(token)
    session.flush()
    events.record(
        session,
        actor=principal.name,
        action="token.created",
        kind="token",
        name=name,
        resource_id=token.id,
        changes={"user": user.name},
    )
    return token, user, secret


def list_tokens(
    session: Session, principal: Principal, query: ListQuery
) -> tuple[list[ApiToken], Pagination, str | None]:
    user_name = query.filters.get("user")
    if user_name is not None and user_name != principal.name:
        auth.require_server_admin(principal)
        user_id: str | None = get_user(session, user_name).id
    elif user_name is None and principal.is_admin:
        user_id = None
    else:
        user_id = principal.user_id
    return paginate(
        session,
        repository.tokens_query(user_id),
        query,
        columns={"created_at": ApiToken.created_at, "updated_at": ApiToken.updated_at, "name": ApiToken.name},
        tiebreak=ApiToken.id,
    )


def revoke_token(session: Session, principal: Principal, token_id: str) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"Token '{token_id}' not found", error_code="TOKEN_NOT_FOUND")
    session.delete(token)
    principals_changed(session, token.user_id)
    events.record(
        session, actor=principal.name, action="token.revoked", kind="token", name=token.name, resource_id=token.id
    )
