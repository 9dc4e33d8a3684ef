"""HTTP routes of users, tokens and /v1/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status

from modelyard.auth import CurrentPrincipal
from modelyard.identity import repository, service
from modelyard.identity.schemas import (
    MembershipOfMe,
    MeRead,
    TokenCreate,
    TokenCreated,
    TokenFilters,
    TokenRead,
    UserCreate,
    UserFilters,
    UserRead,
    UserUpdate,
)
from modelyard.identity.tables import ApiToken, User
from modelyard.kit.etag import etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, api_router
from modelyard.workspace import repository as workspaces

router = api_router("/v1")


@router.get("/me", tags=["identity"])
def get_me(principal: CurrentPrincipal, session: DbSession) -> MeRead:
    user = service.get_user(session, principal.name)
    memberships = [MembershipOfMe(workspace=w, role=r) for w, r in workspaces.memberships_of_user(session, user.id)]
    return MeRead(**UserRead.model_validate(user).model_dump(), memberships=memberships)


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(body: UserCreate, principal: CurrentPrincipal, session: DbSession, response: Response) -> UserRead:
    user = service.create_user(session, principal, body.name, body.display_name, body.is_admin)
    response.headers["ETag"] = etag_of(user)
    return UserRead.model_validate(user)


@router.get("/users", tags=["users"])
def list_users(
    principal: CurrentPrincipal,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(UserFilters))],
) -> Page[UserRead]:
    rows, pagination, token = service.list_users(session, principal, query)
    return Page(data=[UserRead.model_validate(u) for u in rows], pagination=pagination, next_page_token=token)


@router.get("/users/{user}", tags=["users"])
def get_user(user: str, principal: CurrentPrincipal, session: DbSession, response: Response) -> UserRead:
    found = service.read_user(session, principal, user)
    response.headers["ETag"] = etag_of(found)
    return UserRead.model_validate(found)


@router.patch("/users/{user}", tags=["users"])
def update_user(
    user: str,
    body: UserUpdate,
    principal: CurrentPrincipal,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    updated = service.update_user(session, principal, user, changes, if_match)
    response.headers["ETag"] = etag_of(updated)
    return UserRead.model_validate(updated)


@router.delete("/users/{user}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def delete_user(user: str, principal: CurrentPrincipal, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete_user(session, principal, user, if_match)


def _token(token: ApiToken, user: User) -> TokenRead:
    return TokenRead(
        id=token.id,
        name=token.name,
        user=user.name,
        token_prefix=token.token_prefix,
        expires_at=token.expires_at,
        created_at=token.created_at,
    )


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["tokens"])
def create_token(body: TokenCreate, principal: CurrentPrincipal, session: DbSession) -> TokenCreated:
    token, user, secret = service.create_token(session, principal, body.name, body.user, body.expires_at)
    return TokenCreated(**_token(token, user).model_dump(), token=secret)


@router.get("/tokens", tags=["tokens"])
def list_tokens(
    principal: CurrentPrincipal,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(TokenFilters, sorts=("created_at", "name")))],
) -> Page[TokenRead]:
    rows, pagination, next_token = service.list_tokens(session, principal, query)
    users = repository.users_by_id(session, {t.user_id for t in rows})
    data = [_token(t, users[t.user_id]) for t in rows]
    return Page(data=data, pagination=pagination, next_page_token=next_token)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
def revoke_token(token_id: str, principal: CurrentPrincipal, session: DbSession) -> None:
    service.revoke_token(session, principal, token_id)
