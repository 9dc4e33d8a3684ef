"""Who is calling: API tokens from `Authorization: Bearer`, `X-Auth-Token` or `x-api-key`, hashed and looked
up; the caller as a `Principal`; and the server-admin guard. Workspace roles live in modelyard.workspace."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from modelyard.db.base import utcnow
from modelyard.errors import Forbidden, Unauthorized
from modelyard.identity import repository
from modelyard.identity.principals import PrincipalCache
from modelyard.kit.routing import run_read

TOKEN_PREFIX = "myd_"  # noqa: S105 (a marker, not a secret)
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    is_admin: bool
    token_id: str | None = None


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: nobody can brute-force the preimage.
    return hashlib.sha256(token.encode()).hexdigest()


def extract_token(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <token>'", error_code="INVALID_TOKEN")
        return value.strip()
    return headers.get("x-auth-token") or headers.get("x-api-key")


def _token_hash(request: Request) -> str:
    token = extract_token(request.headers)
    if not token:
        raise Unauthorized("Missing API token", error_code="MISSING_TOKEN")
    return _checked_hash(token)


def _checked_hash(token: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise Unauthorized("Invalid API token", error_code="INVALID_TOKEN")
    return hash_token(token)


def _remember(request: Request, principal: Principal) -> Principal:
    request.state.principal = principal
    request.state.user = principal.name  # for the access log
    return principal


def _cache(request: Request) -> PrincipalCache:
    cache: PrincipalCache = request.app.state.ctx.principals
    return cache


def _look_up(request: Request, token_hash: str) -> Principal:
    """The caller from the database (a cache miss), read outside the request's session; remembered in the cache
    unless a revocation raced the read."""
    cache = _cache(request)
    generation = cache.generation()
    with request.app.state.ctx.db.reading() as reader:
        found = repository.find_token(reader, token_hash)
    if found is None:
        raise Unauthorized("Invalid API token", error_code="INVALID_TOKEN")
    expires_at = found["expires_at"]
    if expires_at is not None and expires_at <= utcnow():
        raise Unauthorized(f"API token '{found['token_name']}' has expired", error_code="TOKEN_EXPIRED")
    principal = Principal(
        user_id=found["user_id"], name=found["user_name"], is_admin=found["is_admin"], token_id=found["token_id"]
    )
    cache.put(token_hash, principal, expires_at, generation)
    return _remember(request, principal)


def authenticate(request: Request) -> Principal:
    """The caller of this request; 401 in the error shape when the token is missing, unknown or expired. Answers
    from the app's principal cache when it can (see modelyard.identity.principals), else from the database."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token_hash = _token_hash(request)
    hit = _cache(request).get(token_hash)
    return _remember(request, hit) if hit is not None else _look_up(request, token_hash)


async def current_principal(request: Request) -> Principal:
    """The dependency: a cache hit answers on the event loop; a miss is a prebuilt read (see run_read)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token_hash = _token_hash(request)
    hit = _cache(request).get(token_hash)
    if hit is not None:
        return _remember(request, hit)
    return await run_read(request, _look_up, request, token_hash)


async def principal_of_token(request: Request, token: str) -> Principal:
    """The caller holding `token` (given other than in a header: the web UI's session cookie), by the same checks,
    cache and lookup as `current_principal`; 401 when it is unknown, revoked or expired."""
    token_hash = _checked_hash(token)
    hit = _cache(request).get(token_hash)
    if hit is not None:
        return _remember(request, hit)
    return await run_read(request, _look_up, request, token_hash)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_server_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only server admins may do this", error_code="ADMIN_REQUIRED")
