"""modelyard.db.writes on both databases: a prebuilt insert stores what the ORM reads back (defaults, aware UTC
datetimes, JSON, NULL for an absent JSON value), in the session's transaction (rolled back with it), a conflict is
skipped and counted as 0 rows, another constraint's refusal is the session's own IntegrityError, and a row with an
unknown or a missing column is refused before any SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelyard.db import writes
from modelyard.db.base import UTCDateTime
from modelyard.db.engine import Database
from modelyard.event.tables import Event
from modelyard.model.tables import Model
from modelyard.workspace.tables import Workspace

_MODEL = writes.Insert(Model.__table__, skip_conflicts=True)
_EVENT = writes.Insert(Event.__table__)


def _workspace(db: Database, name: str) -> str:
    with db.session(write=True) as session:
        workspace = Workspace(name=name)
        session.add(workspace)
        session.commit()
        return workspace.id


def test_a_row_reads_back_as_the_orm_gives_it(db: Database) -> None:
    workspace_id = _workspace(db, "writes")
    card = {"a": [1, 2.5, None], "é": True}
    row = _MODEL.row({"workspace_id": workspace_id, "name": "typed", "model_card": card})
    assert row["id"].startswith("model-")
    assert row["created_at"].tzinfo == UTC
    assert (row["description"], row["visibility"], row["labels"], row["version"]) == ("", "PRIVATE", {}, 1)
    with db.session(write=True) as session:
        assert writes.insert(session, _MODEL, [row]) == 1
        session.commit()
    with db.session(write=False) as session:
        stored = session.get_one(Model, row["id"])
        assert {c.key: getattr(stored, c.key) for c in Model.__table__.c} == row
        assert isinstance(stored.created_at, datetime)
        # An absent JSON value is SQL NULL, as the ORM stores a column it was given nothing for (not JSON 'null').
        assert session.scalar(sa.select(sa.func.count()).where(Model.model_creation_parameters.is_(None))) == 1


def test_the_insert_is_part_of_the_session_transaction(db: Database) -> None:
    workspace_id = _workspace(db, "rolled-back")
    with db.session(write=True) as session:
        session.add(Workspace(name="pending"))  # flushed first: the unit of work's rows go in before the insert
        event = _EVENT.row(
            {"actor": "a", "action": "x", "resource_kind": "k", "resource_name": "n", "resource_id": "1"}
        )
        assert writes.insert(session, _EVENT, [event]) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1
        assert session.scalar(sa.select(sa.func.count()).where(Workspace.name == "pending")) == 1
        session.rollback()
    with db.session(write=True) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0
        rows = [_MODEL.row({"workspace_id": workspace_id, "name": f"m{i}"}) for i in range(3)]
        assert writes.insert(session, _MODEL, rows) == 3
        assert writes.insert(session, _MODEL, []) == 0
        session.commit()
    with db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Model)) == 3


def test_a_conflict_is_skipped_and_another_constraint_raises(db: Database) -> None:
    workspace_id = _workspace(db, "conflicts")
    with db.session(write=True) as session:
        assert writes.insert(session, _MODEL, [_MODEL.row({"workspace_id": workspace_id, "name": "one"})]) == 1
        again = _MODEL.row({"workspace_id": workspace_id, "name": "one", "description": "second"})
        assert writes.insert(session, _MODEL, [again]) == 0
        session.commit()
    with db.session(write=False) as session:
        assert session.scalars(sa.select(Model.description)).all() == [""]
    with db.session(write=True) as session, pytest.raises(IntegrityError):
        writes.insert(session, _MODEL, [_MODEL.row({"workspace_id": "workspace-gone", "name": "orphan"})])


def test_a_row_must_name_known_columns_and_every_required_one() -> None:
    with pytest.raises(KeyError, match="no column"):
        _MODEL.row({"workspace_id": "w", "name": "n", "colour": "red"})
    with pytest.raises(KeyError, match="No value"):
        _MODEL.row({"name": "n"})
    with pytest.raises(TypeError, match="needs a table"):
        writes.Insert(Model.__table__.alias("m"))


_STAMPS = sa.Table("stamps", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UTCDateTime))


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("2026-11-24 02:01:41.123456", datetime(2026, 11, 24, 2, 1, 41, 123456, tzinfo=UTC)),  # as SQLAlchemy writes
        ("2026-11-24 02:01:41", datetime(2026, 11, 24, 2, 1, 41, tzinfo=UTC)),  # CURRENT_TIMESTAMP
        ("2026-11-24T02:01:41.5+02:00", datetime(2026, 11, 24, 0, 1, 41, 500000, tzinfo=UTC)),  # by another writer
        (None, None),
    ],
)
def test_a_sqlite_timestamp_reads_back_in_utc(stored: str | None, read: datetime | None) -> None:
    """SQLite keeps UTCDateTime's values as naive text in UTC, read with datetime.fromisoformat; text in another
    form still reads through SQLAlchemy's own parsing, converted to UTC."""
    engine = sa.create_engine("sqlite://")
    _STAMPS.create(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO stamps (id, at) VALUES (1, ?)", (stored,))
        assert connection.scalar(sa.select(_STAMPS.c.at)) == read
        now = datetime.now(UTC)
        connection.execute(_STAMPS.insert().values(id=2, at=now))
        assert connection.scalar(sa.select(_STAMPS.c.at).where(_STAMPS.c.id == 2)) == now
