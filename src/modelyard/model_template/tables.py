"""Model templates. Everything but the description is immutable once created, as on SGP."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, new_id, utcnow


class EndpointType(enum.StrEnum):
    SYNC = "SYNC"
    ASYNC = "ASYNC"
    STREAMING = "STREAMING"
    BATCH = "BATCH"


class EndpointProtocol(enum.StrEnum):
    SGP = "SGP"
    COHERE = "COHERE"
    VLLM = "VLLM"


class ModelTemplate(Base):
    __tablename__ = "model_templates"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("mtpl"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    endpoint_type: Mapped[str] = mapped_column(sa.String(16))
    model_type: Mapped[str] = mapped_column(sa.String(32))
    endpoint_protocol: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    # Stored with SGP's defaults filled in, exactly as answered.
    vendor_configuration: Mapped[dict[str, Any]] = mapped_column(JSONType)
    model_creation_parameters_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    model_request_parameters_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    updated_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_model_templates_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
        sa.Index("ix_model_templates_workspace_id_updated_at_id", "workspace_id", "updated_at", "id"),
        sa.Index("ix_model_templates_workspace_id_model_type", "workspace_id", "model_type"),
        sa.Index("ix_model_templates_workspace_id_endpoint_type", "workspace_id", "endpoint_type"),
        # The list across every workspace of a caller sorts on these.
        sa.Index("ix_model_templates_created_at_id", "created_at", "id"),
        sa.Index("ix_model_templates_updated_at_id", "updated_at", "id"),
        sa.Index("ix_model_templates_name_id", "name", "id"),
        sa.CheckConstraint("endpoint_type IN ('SYNC', 'ASYNC', 'STREAMING', 'BATCH')", name="endpoint_type"),
        sa.CheckConstraint(
            "model_type IN ('COMPLETION', 'CHAT_COMPLETION', 'AGENT', 'EMBEDDING', 'RERANKING', 'GENERIC')",
            name="model_type",
        ),
        sa.CheckConstraint(
            "endpoint_protocol IS NULL OR endpoint_protocol IN ('SGP', 'COHERE', 'VLLM')", name="endpoint_protocol"
        ),
    )
    __mapper_args__ = {"version_id_col": version}
