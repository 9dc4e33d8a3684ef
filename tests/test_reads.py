"""modelyard.db.reads on both databases: rows come back as the ORM gives them (aware UTC datetimes, parsed JSON,
booleans), reads share one snapshot, connections go back to the pool, and a statement that changes shape is
refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from modelyard.db.engine import Database
from modelyard.db.reads import Read
from modelyard.model.tables import Model
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
