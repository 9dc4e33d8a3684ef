"""Models, their labels, their versions and each version's manifest."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, new_id, utcnow
from modelyard.db.match import prefix_index


class ModelType(enum.StrEnum):
    COMPLETION = "COMPLETION"
    CHAT_COMPLETION = "CHAT_COMPLETION"
    AGENT = "AGENT"
    EMBEDDING = "EMBEDDING"
    RERANKING = "RERANKING"
    GENERIC = "GENERIC"


class Visibility(enum.StrEnum):
    PRIVATE = "PRIVATE"
    PUBLIC = "PUBLIC"


class VersionStatus(enum.StrEnum):
    CREATING = "CREATING"
    READY = "READY"
    FAILED = "FAILED"


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("model"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1024), default="")
    model_type: Mapped[str] = mapped_column(sa.String(32), default=ModelType.GENERIC.value)
    display_name: Mapped[str] = mapped_column(sa.String(255), default="")
    visibility: Mapped[str] = mapped_column(sa.String(16), default=Visibility.PRIVATE.value)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    base_model_metadata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    model_card: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    training_data_card: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    current_version_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    # Made from a template (SGP): its id, its 'workspace/name' and the creation parameters as checked against it.
    # No foreign key: SQLite adds one only by copying the table, and dropping the old copy with foreign keys on would
    # delete every version and adapter. The template service locks the template row instead, so a template is never
    # deleted while models use it; only deleting its whole workspace leaves models pointing at a template that is gone.
    model_template_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True, index=True)
    model_template: Mapped[str | None] = mapped_column(sa.String(511), nullable=True)
    model_creation_parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # Numbers the versions created without a name (v1, v2, ...); bumping it serialises concurrent creates.
    version_counter: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    updated_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_models_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
        sa.Index("ix_models_workspace_id_updated_at_id", "workspace_id", "updated_at", "id"),
        sa.Index("ix_models_workspace_id_model_type", "workspace_id", "model_type"),
        sa.Index("ix_models_workspace_id_visibility", "workspace_id", "visibility"),
        sa.Index("ix_models_visibility", "visibility"),
        # LIKE 'prefix%' on PostgreSQL (SQLite answers prefixes from the unique index, see modelyard.db.match).
        prefix_index("ix_models_workspace_id_name_pattern", "workspace_id"),
        sa.CheckConstraint(
            "model_type IN ('COMPLETION', 'CHAT_COMPLETION', 'AGENT', 'EMBEDDING', 'RERANKING', 'GENERIC')",
            name="model_type",
        ),
        sa.CheckConstraint("visibility IN ('PRIVATE', 'PUBLIC')", name="visibility"),
    )
    __mapper_args__ = {"version_id_col": version}


class ModelLabel(Base):
    """One row per label, so `?label=key:value` filters use an index on every database."""

    __tablename__ = "model_labels"

    model_id: Mapped[str] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(1024))

    __table_args__ = (sa.Index("ix_model_labels_key_value", "key", "value"),)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("mv"))
    model_id: Mapped[str] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(1024), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default=VersionStatus.CREATING.value)
    status_message: Mapped[str] = mapped_column(sa.Text, default="")
    base_model_type: Mapped[str] = mapped_column(sa.String(64))
    model_path: Mapped[str] = mapped_column(sa.String(2048), default="")
    local_model_path: Mapped[str] = mapped_column(sa.String(4096), default="")
    # Where the files really came from once resolved, e.g. the Hub commit a revision pointed at.
    source: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The version's config.json as read (small), for checking adapters against the base's real dimensions.
    base_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    file_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("model_id", "name"),
        sa.Index("ix_model_versions_model_id_created_at_id", "model_id", "created_at", "id"),
        sa.Index("ix_model_versions_model_id_status", "model_id", "status"),
        sa.Index("ix_model_versions_base_model_type", "base_model_type"),
        sa.CheckConstraint("status IN ('CREATING', 'READY', 'FAILED')", name="status"),
    )
    __mapper_args__ = {"version_id_col": version}


class ModelVersionFile(Base):
    """The manifest of a READY version: every file with its size and sha256."""

    __tablename__ = "model_version_files"

    version_id: Mapped[str] = mapped_column(sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(
        sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql"), primary_key=True
    )
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
