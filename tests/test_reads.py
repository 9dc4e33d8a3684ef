"""modelyard.db.reads on both databases: rows come back as the ORM gives them (aware UTC datetimes, parsed JSON,
booleans), reads share one snapshot, connections go back to the pool, and a statement that changes shape is
refused."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from modelyard.db.base import row_copy
from modelyard.db.engine import Database
from modelyard.db.reads import Read
from modelyard.model.tables import Model
from modelyard.workspace import repository as workspace_repository
from modelyard.workspace.schemas import WorkspaceRead
from modelyard.workspace.tables import Workspace

_BY_NAME = Read(
    sa.select(Workspace.id.label("id"), Workspace.name.label("name"), Workspace.created_at.label("created_at")).where(
        Workspace.name == sa.bindparam("name")
    )
)


_TYPED = Read(
    sa.select(
        Model.model_card.label("doc"),
        Model.model_creation_parameters.label("absent"),
        sa.bindparam("flag", type_=sa.Boolean).label("flag"),
        sa.literal(7, sa.Integer).label("seven"),
    ).where(Model.name == sa.bindparam("name"))
)


def test_rows_are_typed_as_the_orm_gives_them(db: Database) -> None:
    with db.session(write=True) as session:
        workspace = Workspace(name="reads")
        session.add(workspace)
        session.flush()
        card = {"a": [1, 2.5, None], "é": True}
        session.add(Model(workspace_id=workspace.id, name="typed", model_card=card))
        session.commit()
    with db.session(write=False) as session:
        orm = session.scalar(sa.select(Workspace).where(Workspace.name == "reads"))
    assert orm is not None
    with db.reading() as reader:
        row = reader.first(_BY_NAME, name="reads")
        assert reader.first(_BY_NAME, name="absent") is None
        assert reader.all(_BY_NAME, name="absent") == []
        typed = reader.first(_TYPED, name="typed", flag=True)
        untrue = reader.first(_TYPED, name="typed", flag=False)
    assert row == {"id": orm.id, "name": "reads", "created_at": orm.created_at}
    assert isinstance(row["created_at"], datetime)
    assert row["created_at"].tzinfo == UTC
    assert typed == {"doc": {"a": [1, 2.5, None], "é": True}, "absent": None, "flag": True, "seven": 7}
    assert untrue is not None
    assert untrue["flag"] is False


def test_reads_share_one_snapshot_and_return_their_connection(db: Database) -> None:
    with db.reading() as reader:
        assert reader.first(_BY_NAME, name="late") is None
        with db.session(write=True) as session:  # committed while the reader is open
            session.add(Workspace(name="late"))
            session.commit()
        if db.is_sqlite:  # one deferred transaction: the snapshot predates the write
            assert reader.first(_BY_NAME, name="late") is None
    with db.reading() as reader:
        assert reader.first(_BY_NAME, name="late") is not None
    assert db.engine.pool.checkedout() == 0


def test_an_error_inside_a_read_returns_the_connection(db: Database) -> None:
    with pytest.raises(KeyError), db.reading() as reader:
        reader.first(_BY_NAME)  # the parameter is missing
    assert db.engine.pool.checkedout() == 0
    with db.reading() as reader:  # the pooled connection is still good
        assert reader.first(_BY_NAME, name="nobody") is None


def test_a_statement_of_changing_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="expanding"):
        Read(sa.select(Workspace.id).where(Workspace.name.in_(sa.bindparam("names", expanding=True))))


def test_a_row_copy_reads_as_the_orm_object_does(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(Workspace(name="copied", description="d"))
        session.commit()
    with db.reading() as reader:
        row = workspace_repository.read_with_role(reader, "copied", "user-none")
    assert row is not None
    assert row.pop("role") is None
    copy = row_copy(Workspace, row)
    with db.session(write=False) as session:
        orm = session.scalar(sa.select(Workspace).where(Workspace.name == "copied"))
    assert WorkspaceRead.model_validate(copy) == WorkspaceRead.model_validate(orm)
    assert sa.inspect(copy).transient


def test_a_row_copy_works_before_any_query_configured_the_mappers() -> None:
    script = (
        "import modelyard.db.tables\n"
        "from modelyard.db.base import row_copy\n"
        "from modelyard.workspace.tables import Workspace\n"
        "w = row_copy(Workspace, {'id': 'ws-1', 'name': 'n', 'version': 2})\n"
        "print(w.id, w.name, w.version)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["ws-1", "n", "2"]


def test_sqlite_reads_on_an_event_loop_keep_one_connection(db: Database) -> None:
    """On SQLite, the reads made on an event loop share a connection kept for that loop, outside the pool; a read
    begun while another is under way on the loop, and any read off a loop, take one from the pool; each read is
    its own snapshot; `dispose` closes the kept connection."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's reads on the loop are its asyncio connections (AsyncReads)")
    seen: list[object] = []

    async def reads() -> None:
        for name in ("first", "second"):
            with db.reading() as reader:
                assert reader.first(_BY_NAME, name=name) is None
                seen.append(reader._cursor.connection)
                assert db.engine.pool.checkedout() == 0  # not the pool's
                with db.reading() as nested:  # one under way already: the pool's
                    assert db.engine.pool.checkedout() == 1
                    assert nested.first(_BY_NAME, name=name) is None
            with db.session(write=True) as session:  # the next read is a new snapshot
                session.add(Workspace(name=name))
                session.commit()
            with db.reading() as reader:
                assert reader.first(_BY_NAME, name=name) is not None
        db.dispose()
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            seen[0].execute("SELECT 1")  # type: ignore[attr-defined]

    asyncio.run(reads())
    assert seen[0] is seen[1]
    with db.reading() as reader:  # off a loop
        assert db.engine.pool.checkedout() == 1
        assert reader.first(_BY_NAME, name="second") is not None
