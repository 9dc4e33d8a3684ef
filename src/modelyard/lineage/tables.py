"""Datasets, prompts and fine-tuning jobs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, JSONType, UTCDateTime, new_id, utcnow


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("dataset"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    source: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    features: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_datasets_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
    )
    __mapper_args__ = {"version_id_col": version}


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("prompt"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    dataset_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True, index=True
    )
    prompt_template: Mapped[str] = mapped_column(sa.Text, default="")
    input_template: Mapped[str] = mapped_column(sa.Text, default="")
    completion_template: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_prompts_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
    )
    __mapper_args__ = {"version_id_col": version}


class FineTuningJob(Base):
    __tablename__ = "fine_tuning_jobs"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("ftjob"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    base_model_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("models.id", ondelete="SET NULL"), nullable=True, index=True
    )
    base_model_version_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    dataset_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True, index=True
    )
    prompt_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("prompts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    adapter_name: Mapped[str] = mapped_column(sa.String(255), default="")
    dataset_fraction: Mapped[float] = mapped_column(sa.Float, default=1.0)
    train_test_split: Mapped[float] = mapped_column(sa.Float, default=0.9)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=JobStatus.PENDING.value)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_fine_tuning_jobs_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
        sa.CheckConstraint("status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED')", name="status"),
        sa.CheckConstraint("dataset_fraction > 0 AND dataset_fraction <= 1", name="dataset_fraction"),
        sa.CheckConstraint("train_test_split > 0 AND train_test_split <= 1", name="train_test_split"),
    )
    __mapper_args__ = {"version_id_col": version}
