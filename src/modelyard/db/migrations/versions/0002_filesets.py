"""filesets, files and blobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modelyard.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blobs_last_used_at"), ["last_used_at"], unique=False)

    op.create_table(
        "filesets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("storage", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("purpose IN ('model', 'dataset', 'generic')", name=op.f("ck_filesets_purpose")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_filesets_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filesets")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_filesets_workspace_id_name")),
    )
    with op.batch_alter_table("filesets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_filesets_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_filesets_workspace_id_purpose", ["workspace_id", "purpose"], unique=False)
        batch_op.create_index("ix_filesets_workspace_id_storage", ["workspace_id", "storage"], unique=False)
        batch_op.create_index(
            "ix_filesets_workspace_id_updated_at_id", ["workspace_id", "updated_at", "id"], unique=False
        )

    op.create_table(
        "fileset_files",
        sa.Column("fileset_id", sa.String(length=40), nullable=False),
        sa.Column(
            "path",
            sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fileset_id"], ["filesets.id"], name=op.f("fk_fileset_files_fileset_id_filesets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["blobs.sha256"], name=op.f("fk_fileset_files_sha256_blobs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("fileset_id", "path", name=op.f("pk_fileset_files")),
    )
    with op.batch_alter_table("fileset_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fileset_files_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fileset_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fileset_files_sha256"))

    op.drop_table("fileset_files")
    with op.batch_alter_table("filesets", schema=None) as batch_op:
        batch_op.drop_index("ix_filesets_workspace_id_updated_at_id")
        batch_op.drop_index("ix_filesets_workspace_id_storage")
        batch_op.drop_index("ix_filesets_workspace_id_purpose")
        batch_op.drop_index("ix_filesets_workspace_id_created_at_id")

    op.drop_table("filesets")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blobs_last_used_at"))

    op.drop_table("blobs")
