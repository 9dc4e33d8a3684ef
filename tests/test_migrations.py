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
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
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
