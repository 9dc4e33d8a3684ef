"""Adapters. The name is unique across the whole workspace, whichever model the adapter is on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, new_id, utcnow
from modelyard.db.match import prefix_index


class Adapter(Base):
    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("adapter"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    model_id: Mapped[str] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    finetuning_type: Mapped[str] = mapped_column(sa.String(32))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    lora_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # Exactly one source: fileset, local directory, Hugging Face repository, or model-registry reference.
    source_type: Mapped[str] = mapped_column(sa.String(16))
    fileset: Mapped[str] = mapped_column(sa.String(600), default="")
    fileset_id: Mapped[str | None] = mapped_column(sa.ForeignKey("filesets.id", ondelete="SET NULL"), nullable=True)
    location: Mapped[str] = mapped_column(sa.String(4096), default="")
    huggingface_name: Mapped[str] = mapped_column(sa.String(512), default="")
    model_registry: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    source_pinned: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    fine_tuning_job_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("fine_tuning_jobs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    prompt_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("prompts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    compatibility: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    updated_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_adapters_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
        sa.Index("ix_adapters_workspace_id_updated_at_id", "workspace_id", "updated_at", "id"),
        sa.Index("ix_adapters_workspace_id_model_id_created_at_id", "workspace_id", "model_id", "created_at", "id"),
        prefix_index("ix_adapters_workspace_id_name_pattern", "workspace_id"),
        sa.Index("ix_adapters_workspace_id_enabled", "workspace_id", "enabled"),
        sa.Index("ix_adapters_workspace_id_finetuning_type", "workspace_id", "finetuning_type"),
        sa.Index("ix_adapters_fileset_id", "fileset_id"),
        sa.CheckConstraint(
            "source_type IN ('fileset', 'location', 'huggingface', 'model_registry')", name="source_type"
        ),
    )
    __mapper_args__ = {"version_id_col": version}
