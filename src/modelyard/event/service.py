"""Recording and reading the event log. `record` inserts the row in the caller's transaction: the event commits
exactly when the change it describes does."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.db import writes
from modelyard.event.tables import Event
from modelyard.kit.pagination import ListQuery, Pagination, paginate

# A prebuilt insert (modelyard.db.writes), not an ORM object: an event is only ever appended, and every write
# records one.
INSERT_EVENT = writes.Insert(Event.__table__)


class EventFields(TypedDict):
    """What an event records (`record`, `new_row`); the resource is named by its kind, name and id."""

    actor: str
    action: str
    kind: str
    name: str
    resource_id: str
    workspace_id: NotRequired[str | None]
    workspace: NotRequired[str | None]
    changes: NotRequired[dict[str, Any] | None]


def record(target: Session | writes.DriverTransaction, **fields: Unpack[EventFields]) -> None:
    writes.insert(target, INSERT_EVENT, [new_row(**fields)])


def new_row(**fields: Unpack[EventFields]) -> writes.Row:
    """An event's row as `record` stores it, for a write that inserts it itself (modelyard.db.writes.Guarded)."""
    return INSERT_EVENT.row(
        {
            "actor": fields["actor"],
            "action": fields["action"],
            "resource_kind": fields["kind"],
            "resource_name": fields["name"],
            "resource_id": fields["resource_id"],
            "workspace_id": fields.get("workspace_id"),
            "workspace": fields.get("workspace"),
            "changes": fields.get("changes") or {},
        }
    )


def list_events(
    session: Session, workspace_id: str | None, query: ListQuery
) -> tuple[list[Event], Pagination, str | None]:
    """Events of one workspace, or of the whole server (workspace_id None, for server admins)."""
    stmt = sa.select(Event)
    if workspace_id is not None:
        stmt = stmt.where(Event.workspace_id == workspace_id)
    filters = query.filters
    if "workspace" in filters:
        stmt = stmt.where(Event.workspace == filters["workspace"])
    if "action" in filters:
        stmt = stmt.where(Event.action == filters["action"])
    if "resource_kind" in filters:
        stmt = stmt.where(Event.resource_kind == filters["resource_kind"])
    if "since" in filters:
        stmt = stmt.where(Event.at >= filters["since"])
    # The id orders events as they were written; `at` sorts by it too so keyset pages stay on one index.
    return paginate(session, stmt, query, columns={"at": Event.id}, tiebreak=Event.id)
