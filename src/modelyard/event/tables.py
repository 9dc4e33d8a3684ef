"""Event rows. The integer id gives the order in which changes committed into each workspace's log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, utcnow

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # No foreign key: the audit log outlives the workspace it describes.
    workspace_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    workspace: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))
    resource_kind: Mapped[str] = mapped_column(sa.String(32))
    resource_name: Mapped[str] = mapped_column(sa.String(1024))
    resource_id: Mapped[str] = mapped_column(sa.String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.Index("ix_events_workspace_id_id", "workspace_id", "id"),
        sa.Index("ix_events_workspace_id_action_id", "workspace_id", "action", "id"),
        sa.Index("ix_events_workspace_id_resource_kind_id", "workspace_id", "resource_kind", "id"),
    )
