"""model templates, and models made from them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import modelyard.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("endpoint_type", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("endpoint_protocol", sa.String(length=16), nullable=True),
        sa.Column(
            "vendor_configuration",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "model_creation_parameters_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "model_request_parameters_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "endpoint_protocol IS NULL OR endpoint_protocol IN ('SGP', 'COHERE', 'VLLM')",
            name=op.f("ck_model_templates_endpoint_protocol"),
        ),
        sa.CheckConstraint(
            "endpoint_type IN ('SYNC', 'ASYNC', 'STREAMING', 'BATCH')", name=op.f("ck_model_templates_endpoint_type")
        ),
        sa.CheckConstraint(
            "model_type IN ('COMPLETION', 'CHAT_COMPLETION', 'AGENT', 'EMBEDDING', 'RERANKING', 'GENERIC')",
            name=op.f("ck_model_templates_model_type"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_model_templates_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_templates")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_model_templates_workspace_id_name")),
    )
    with op.batch_alter_table("model_templates", schema=None) as batch_op:
        batch_op.create_index("ix_model_templates_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_model_templates_name_id", ["name", "id"], unique=False)
        batch_op.create_index("ix_model_templates_updated_at_id", ["updated_at", "id"], unique=False)
        batch_op.create_index(
            "ix_model_templates_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_model_templates_workspace_id_endpoint_type", ["workspace_id", "endpoint_type"], unique=False
        )
        batch_op.create_index(
            "ix_model_templates_workspace_id_model_type", ["workspace_id", "model_type"], unique=False
        )
        batch_op.create_index(
            "ix_model_templates_workspace_id_updated_at_id", ["workspace_id", "updated_at", "id"], unique=False
        )

    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_template_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("model_template", sa.String(length=511), nullable=True))
        batch_op.add_column(
            sa.Column(
                "model_creation_parameters",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.create_index(batch_op.f("ix_models_model_template_id"), ["model_template_id"], unique=False)


def _native_drop_column() -> bool:
    # A batch copy of `models` on SQLite drops the old table, which with foreign keys on deletes every version and
    # adapter of every model; SQLite 3.35 and later drop a plain column in place.
    bind = op.get_bind()
    return (
        bind.dialect.name == "sqlite"
        and bind.dialect.dbapi is not None
        and bind.dialect.dbapi.sqlite_version_info >= (3, 35)
    )


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_model_template_id"))
    if _native_drop_column():
        for column in ("model_creation_parameters", "model_template", "model_template_id"):
            op.execute(f"ALTER TABLE models DROP COLUMN {column}")
    else:
        with op.batch_alter_table("models", schema=None) as batch_op:
            batch_op.drop_column("model_creation_parameters")
            batch_op.drop_column("model_template")
            batch_op.drop_column("model_template_id")

    with op.batch_alter_table("model_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_model_templates_workspace_id_updated_at_id")
        batch_op.drop_index("ix_model_templates_workspace_id_model_type")
        batch_op.drop_index("ix_model_templates_workspace_id_endpoint_type")
        batch_op.drop_index("ix_model_templates_workspace_id_created_at_id")
        batch_op.drop_index("ix_model_templates_updated_at_id")
        batch_op.drop_index("ix_model_templates_name_id")
        batch_op.drop_index("ix_model_templates_created_at_id")

    op.drop_table("model_templates")
