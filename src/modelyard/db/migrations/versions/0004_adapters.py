"""adapters and lineage

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import modelyard.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column(
            "source", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "features", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_datasets_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_datasets_workspace_id_name")),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_datasets_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "prompts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=True),
        sa.Column("prompt_template", sa.Text(), nullable=False),
        sa.Column("input_template", sa.Text(), nullable=False),
        sa.Column("completion_template", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_prompts_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_prompts_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_prompts_workspace_id_name")),
    )
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompts_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(
            "ix_prompts_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "fine_tuning_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("base_model_id", sa.String(length=40), nullable=True),
        sa.Column("base_model_version_id", sa.String(length=40), nullable=True),
        sa.Column("dataset_id", sa.String(length=40), nullable=True),
        sa.Column("prompt_id", sa.String(length=40), nullable=True),
        sa.Column("adapter_name", sa.String(length=255), nullable=False),
        sa.Column("dataset_fraction", sa.Float(), nullable=False),
        sa.Column("train_test_split", sa.Float(), nullable=False),
        sa.Column(
            "hyperparameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED')",
            name=op.f("ck_fine_tuning_jobs_status"),
        ),
        sa.CheckConstraint(
            "dataset_fraction > 0 AND dataset_fraction <= 1", name=op.f("ck_fine_tuning_jobs_dataset_fraction")
        ),
        sa.CheckConstraint(
            "train_test_split > 0 AND train_test_split <= 1", name=op.f("ck_fine_tuning_jobs_train_test_split")
        ),
        sa.ForeignKeyConstraint(
            ["base_model_id"], ["models.id"], name=op.f("fk_fine_tuning_jobs_base_model_id_models"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_fine_tuning_jobs_base_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_fine_tuning_jobs_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name=op.f("fk_fine_tuning_jobs_prompt_id_prompts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_fine_tuning_jobs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fine_tuning_jobs")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_fine_tuning_jobs_workspace_id_name")),
    )
    with op.batch_alter_table("fine_tuning_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fine_tuning_jobs_base_model_id"), ["base_model_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_fine_tuning_jobs_base_model_version_id"), ["base_model_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fine_tuning_jobs_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fine_tuning_jobs_prompt_id"), ["prompt_id"], unique=False)
        batch_op.create_index(
            "ix_fine_tuning_jobs_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "adapters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("model_version_id", sa.String(length=40), nullable=True),
        sa.Column("finetuning_type", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "lora_config", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("fileset", sa.String(length=600), nullable=False),
        sa.Column("fileset_id", sa.String(length=40), nullable=True),
        sa.Column("location", sa.String(length=4096), nullable=False),
        sa.Column("huggingface_name", sa.String(length=512), nullable=False),
        sa.Column(
            "model_registry",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "source_pinned",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("fine_tuning_job_id", sa.String(length=40), nullable=True),
        sa.Column("prompt_id", sa.String(length=40), nullable=True),
        sa.Column(
            "compatibility",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "source_type IN ('fileset', 'location', 'huggingface', 'model_registry')",
            name=op.f("ck_adapters_source_type"),
        ),
        sa.ForeignKeyConstraint(
            ["fileset_id"], ["filesets.id"], name=op.f("fk_adapters_fileset_id_filesets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["fine_tuning_job_id"],
            ["fine_tuning_jobs.id"],
            name=op.f("fk_adapters_fine_tuning_job_id_fine_tuning_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_adapters_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_adapters_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name=op.f("fk_adapters_prompt_id_prompts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_adapters_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapters")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_adapters_workspace_id_name")),
    )
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.create_index("ix_adapters_fileset_id", ["fileset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_adapters_fine_tuning_job_id"), ["fine_tuning_job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_adapters_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_adapters_model_version_id"), ["model_version_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_adapters_prompt_id"), ["prompt_id"], unique=False)
        batch_op.create_index(
            "ix_adapters_workspace_id_created_at_id", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_adapters_workspace_id_enabled", ["workspace_id", "enabled"], unique=False)
        batch_op.create_index(
            "ix_adapters_workspace_id_finetuning_type", ["workspace_id", "finetuning_type"], unique=False
        )
        batch_op.create_index("ix_adapters_workspace_id_model_id", ["workspace_id", "model_id"], unique=False)
        batch_op.create_index(
            "ix_adapters_workspace_id_updated_at_id", ["workspace_id", "updated_at", "id"], unique=False
        )

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "base_config",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("base_config")

    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.drop_index("ix_adapters_workspace_id_updated_at_id")
        batch_op.drop_index("ix_adapters_workspace_id_model_id")
        batch_op.drop_index("ix_adapters_workspace_id_finetuning_type")
        batch_op.drop_index("ix_adapters_workspace_id_enabled")
        batch_op.drop_index("ix_adapters_workspace_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_adapters_prompt_id"))
        batch_op.drop_index(batch_op.f("ix_adapters_model_version_id"))
        batch_op.drop_index(batch_op.f("ix_adapters_model_id"))
        batch_op.drop_index(batch_op.f("ix_adapters_fine_tuning_job_id"))
        batch_op.drop_index("ix_adapters_fileset_id")

    op.drop_table("adapters")
    with op.batch_alter_table("fine_tuning_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_fine_tuning_jobs_workspace_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_fine_tuning_jobs_prompt_id"))
        batch_op.drop_index(batch_op.f("ix_fine_tuning_jobs_dataset_id"))
        batch_op.drop_index(batch_op.f("ix_fine_tuning_jobs_base_model_version_id"))
        batch_op.drop_index(batch_op.f("ix_fine_tuning_jobs_base_model_id"))

    op.drop_table("fine_tuning_jobs")
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_workspace_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_prompts_dataset_id"))

    op.drop_table("prompts")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index("ix_datasets_workspace_id_created_at_id")

    op.drop_table("datasets")
