"""Event answers and filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Schema


class EventResource(Schema):
    kind: str
    workspace: str | None
    name: str
    id: str


class EventRead(Schema):
    id: int
    actor: str
    action: str
    resource: EventResource
    changes: dict[str, Any]
    at: datetime


class EventFilters(Filters):
    action: str | None = Field(default=None, description="e.g. workspace.updated", max_length=64)
    resource_kind: str | None = Field(default=None, description="e.g. workspace, member", max_length=32)
    since: AwareDatetime | None = Field(default=None, description="Only events at or after this time (ISO 8601)")


def to_read(event: Any) -> EventRead:
    return EventRead(
        id=event.id,
        actor=event.actor,
        action=event.action,
        resource=EventResource(
            kind=event.resource_kind, workspace=event.workspace, name=event.resource_name, id=event.resource_id
        ),
        changes=event.changes,
        at=event.at,
    )


class ServerEventFilters(EventFilters):
    workspace: str | None = Field(default=None, max_length=255, description="Events of this workspace (by name)")
