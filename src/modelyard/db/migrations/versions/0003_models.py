"""models and versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import modelyard.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column(
            "labels", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "base_model_metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "model_card", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "training_data_card",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("current_version_id", sa.String(length=40), nullable=True),
        sa.Column("version_counter", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "model_type IN ('COMPLETION', 'CHAT_COMPLETION', 'AGENT', 'EMBEDDING', 'RERANKING', 'GENERIC')",
            name=op.f("ck_models_model_type"),
        ),
        sa.CheckConstraint("visibility IN ('PRIVATE', 'PUBLIC')", name=op.f("ck_models_visibility")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_models_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_models_workspace_id_name")),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_index("ix_models_visibility", ["visibility"], unique=False)
        batch_op.create_index(
            "ix_models_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_models_workspace_id_model_type", ["workspace_id", "model_type"], unique=False)
        batch_op.create_index(
            "ix_models_workspace_id_updated_at_id", ["workspace_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index("ix_models_workspace_id_visibility", ["workspace_id", "visibility"], unique=False)

    op.create_table(
        "model_labels",
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_labels_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_model_labels")),
    )
    with op.batch_alter_table("model_labels", schema=None) as batch_op:
        batch_op.create_index("ix_model_labels_key_value", ["key", "value"], unique=False)

    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("base_model_type", sa.String(length=64), nullable=False),
        sa.Column("model_path", sa.String(length=2048), nullable=False),
        sa.Column("local_model_path", sa.String(length=4096), nullable=False),
        sa.Column(
            "source", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "spec", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('CREATING', 'READY', 'FAILED')", name=op.f("ck_model_versions_status")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_versions_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_model_versions_model_id_name")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_base_model_type", ["base_model_type"], unique=False)
        batch_op.create_index(
            "ix_model_versions_model_id_created_at_id", ["model_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_model_versions_model_id_status", ["model_id", "status"], unique=False)

    # models <-> model_versions is a cycle: the current-version key is added once both tables exist.
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_models_current_version_id_model_versions"),
            "model_versions",
            ["current_version_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "model_version_files",
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column(
            "path",
            sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_files_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name=op.f("pk_model_version_files")),
    )


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_models_current_version_id_model_versions"), type_="foreignkey")
    op.drop_table("model_version_files")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_model_id_status")
        batch_op.drop_index("ix_model_versions_model_id_created_at_id")
        batch_op.drop_index("ix_model_versions_base_model_type")

    op.drop_table("model_versions")
    with op.batch_alter_table("model_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_model_labels_key_value")

    op.drop_table("model_labels")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index("ix_models_workspace_id_visibility")
        batch_op.drop_index("ix_models_workspace_id_updated_at_id")
        batch_op.drop_index("ix_models_workspace_id_model_type")
        batch_op.drop_index("ix_models_workspace_id_created_at_id")
        batch_op.drop_index("ix_models_visibility")

    op.drop_table("models")
