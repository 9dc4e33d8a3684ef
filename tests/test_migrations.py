"""The shipped migrations produce exactly the tables the code declares, and /readyz knows when they are behind."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from modelyard.db import migrate
from modelyard.db.base import Base
from modelyard.db.engine import Database
from tests.fixtures.app import error_shape


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        opts = {"compare_type": True, "include_object": migrate.for_this_dialect(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []


def test_database_is_at_head(db: Database) -> None:
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    assert migrate.is_at_head(db.engine)


def test_readyz_reports_pending_migrations(tmp_path: object, anon: TestClient) -> None:
    assert anon.get("/readyz").json() == {"status": "ok", "database": "ok", "migrations": "at head"}
    from modelyard.app import create_app
    from modelyard.config import Settings

    empty = Database(f"sqlite:///{tmp_path}/empty.db")
    app = create_app(Settings(home=tmp_path, database_url=empty.url, worker=False), db=empty, start_worker=False)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "modelyard db upgrade" in error_shape(r)["error_msg"]
        migrate.upgrade(empty.engine)
        assert c.get("/readyz").status_code == 200
        command.downgrade(migrate.alembic_config(empty.engine), "base")
        assert c.get("/readyz").status_code == 503
    empty.dispose()


def test_sqlite_migrations_keep_data_and_foreign_keys(tmp_path: object) -> None:
    """Batch migrations copy tables on SQLite; rows of child tables must survive a downgrade and upgrade, and the
    connection must come back with foreign keys on."""
    import sqlalchemy as sa

    db = Database(f"sqlite:///{tmp_path}/keep.db")
    migrate.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO workspaces (id, name, description, created_by, updated_by, created_at, "
            "updated_at, version) VALUES ('ws-1', 'w', '', '', '', '2026-01-01', '2026-01-01', 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO models (id, workspace_id, name, description, model_type, display_name, "
            "visibility, labels, base_model_metadata, model_card, training_data_card, version_counter, "
            "created_by, updated_by, created_at, updated_at, version) VALUES ('m-1', 'ws-1', 'm', '', "
            "'GENERIC', '', 'PRIVATE', '{}', '{}', '{}', '{}', 0, '', '', '2026-01-01', '2026-01-01', 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO model_versions (id, model_id, name, description, status, status_message, "
            "base_model_type, model_path, local_model_path, source, spec, file_count, total_size, "
            "created_by, created_at, updated_at, version) VALUES ('v-1', 'm-1', 'v1', '', 'READY', '', "
            "'X', 'w/f', '', '{}', '{}', 0, 0, '', '2026-01-01', '2026-01-01', 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO model_version_files (version_id, path, size, sha256) VALUES ('v-1', 'config.json', 2, 'ab')"
        )
    command.downgrade(migrate.alembic_config(db.engine), "0003")
    migrate.upgrade(db.engine)
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM model_version_files")).scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    db.dispose()
