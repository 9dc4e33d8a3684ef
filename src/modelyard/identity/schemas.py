"""Request and answer bodies of users, tokens and /v1/me."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Name, Schema, Timestamps, UpdateSchema


class UserCreate(Schema):
    name: Name
    display_name: str = Field(default="", max_length=255)
    is_admin: bool = False


class UserUpdate(UpdateSchema):
    display_name: str | None = Field(default=None, max_length=255)
    is_admin: bool | None = None


class UserRead(Timestamps):
    id: str
    name: str
    display_name: str
    is_admin: bool


class UserFilters(Filters):
    name_prefix: str | None = Field(default=None, max_length=255)
    is_admin: bool | None = None


class TokenCreate(Schema):
    name: Name
    user: Name | None = Field(default=None, description="Whose token; admins only may name another user")
    expires_at: AwareDatetime | None = Field(default=None, description="When the token stops working (UTC)")


class TokenRead(Schema):
    id: str
    name: str
    user: str
    token_prefix: str
    expires_at: datetime | None
    created_at: datetime


class TokenCreated(TokenRead):
    token: str = Field(description="The secret. Shown only in this answer; store it now.")


class TokenFilters(Filters):
    user: str | None = Field(default=None, max_length=255, description="Tokens of this user (admins only)")


class MembershipOfMe(Schema):
    workspace: str
    role: str


class MeRead(UserRead):
    memberships: list[MembershipOfMe]
