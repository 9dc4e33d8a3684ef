"""Alembic environment: runs on the engine handed over by `modelyard.db.migrate` (SQLite in batch mode).

On SQLite, batch mode changes a table by copying it and dropping the original; with foreign keys on, that drop
would cascade into every child table (deleting, say, all versions of all models). So foreign keys are off while
migrations run, as Alembic's documentation advises, and on again afterwards (the connection returns to the pool)."""

from __future__ import annotations

from alembic import context

import modelyard.db.tables  # noqa: F401  (fills Base.metadata)
from modelyard.db.base import Base
from modelyard.db.migrate import for_this_dialect

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.dbapi_connection
    if sqlite and raw is not None:
        # Outside any transaction (the PRAGMA is a no-op inside one): the DBAPI connection is in autocommit mode.
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
            include_object=for_this_dialect(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
