"""indexes for lists at 100,000 rows: a model's adapters in creation order; name prefixes on PostgreSQL

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns): LIKE 'prefix%' uses these on PostgreSQL; SQLite answers prefixes as a range from the
# unique (workspace_id, name) indexes it already has (modelyard.db.match).
PATTERN_INDEXES = [
    ("ix_models_workspace_id_name_pattern", "models"),
    ("ix_adapters_workspace_id_name_pattern", "adapters"),
]


def upgrade() -> None:
    # The enabled adapters of a model, newest first, is what serving fleets poll: filter and order from one index.
    with op.batch_alter_table("adapters") as batch:
        batch.drop_index("ix_adapters_workspace_id_model_id")
        batch.create_index(
            "ix_adapters_workspace_id_model_id_created_at_id", ["workspace_id", "model_id", "created_at", "id"]
        )
    if op.get_bind().dialect.name == "postgresql":
        for name, table in PATTERN_INDEXES:
            op.create_index(name, table, ["workspace_id", "name"], postgresql_ops={"name": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in PATTERN_INDEXES:
            op.drop_index(name, table_name=table)
    with op.batch_alter_table("adapters") as batch:
        batch.drop_index("ix_adapters_workspace_id_model_id_created_at_id")
        batch.create_index("ix_adapters_workspace_id_model_id", ["workspace_id", "model_id"])
