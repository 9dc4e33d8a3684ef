"""Filesets, their files, and the content-addressed blobs the files point at."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.db.base import Base, UTCDateTime, new_id, utcnow


class Purpose(enum.StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    GENERIC = "generic"


class Fileset(Base):
    __tablename__ = "filesets"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("fileset"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    purpose: Mapped[str] = mapped_column(sa.String(16), default=Purpose.GENERIC.value)
    storage: Mapped[str] = mapped_column(sa.String(16))
    # sha256 of the sorted manifest ("path\tsize\tsha256\n" per file), kept current with every file change.
    digest: Mapped[str] = mapped_column(sa.String(64))
    file_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    updated_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        sa.Index("ix_filesets_workspace_id_created_at_id", "workspace_id", "created_at", "id"),
        sa.Index("ix_filesets_workspace_id_updated_at_id", "workspace_id", "updated_at", "id"),
        sa.Index("ix_filesets_workspace_id_purpose", "workspace_id", "purpose"),
        sa.Index("ix_filesets_workspace_id_storage", "workspace_id", "storage"),
        sa.CheckConstraint("purpose IN ('model', 'dataset', 'generic')", name="purpose"),
    )
    __mapper_args__ = {"version_id_col": version}


class Blob(Base):
    """Stored bytes, by content. `last_used_at` gives uploads a grace period against garbage collection."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class FilesetFile(Base):
    __tablename__ = "fileset_files"

    fileset_id: Mapped[str] = mapped_column(sa.ForeignKey("filesets.id", ondelete="CASCADE"), primary_key=True)
    # Byte order ("C" collation) on PostgreSQL, as on SQLite, so listings and keyset pages agree everywhere.
    path: Mapped[str] = mapped_column(
        sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql"), primary_key=True
    )
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.ForeignKey("blobs.sha256", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
