"""Request and answer bodies of workspaces and members."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Description, Name, Schema, Timestamps, UpdateSchema
from modelyard.workspace.tables import Role


class WorkspaceCreate(Schema):
    name: Name
    description: Description = ""


class WorkspaceUpdate(UpdateSchema):
    description: Description | None = None


class WorkspaceRead(Timestamps):
    id: str
    name: str
    description: str
    created_by: str
    updated_by: str
    role: Role | None = Field(
        default=None, description="The caller's role here (null for a server admin who is not a member)"
    )


class WorkspaceFilters(Filters):
    name_prefix: str | None = Field(default=None, max_length=255)


class MemberCreate(Schema):
    user: Name
    role: Role


class MemberUpdate(Schema):
    role: Role


class MemberRead(Schema):
    user: str
    display_name: str
    role: Role
    created_at: datetime
    updated_at: datetime


class MemberFilters(Filters):
    role: Role | None = None
