"""modelyard.db.writes on both databases: a prebuilt insert stores what the ORM reads back (defaults, aware UTC
datetimes, JSON, NULL for an absent JSON value), in the session's transaction (rolled back with it), a conflict is
skipped and counted as 0 rows, another constraint's refusal is the session's own IntegrityError, and a row with an
unknown or a missing column is refused before any SQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from modelyard.db import writes
from modelyard.db.base import UTCDateTime
from modelyard.db.engine import Database
from modelyard.db.group_commit import StatementGroups
from modelyard.db.reads import AsyncReader, AsyncReads, Read
from modelyard.event import service as events
from modelyard.event.tables import Event
from modelyard.model import repository as models
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


# -- PostgreSQL: the writes that arrive together, as one statement (db.group_commit.StatementGroups) -------------

_ONE_OVER = Read(sa.select((sa.literal(12) / sa.func.unnest(sa.bindparam("xs", type_=ARRAY(sa.Integer)))).label("q")))


def _postgres(db: Database) -> AsyncReads:
    if db.async_reads is None:
        pytest.skip("PostgreSQL only: SQLite's writes are grouped in one transaction (test_sqlite_writers.py)")
    return db.async_reads


class _Divisions:
    """12 / x for each x of a group, as one statement; the groups it was given."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    async def __call__(self, writer: AsyncReader, xs: list[int]) -> list[int]:
        self.groups.append(list(xs))
        rows = await writer.change(_ONE_OVER.prepared(writer.dialect), {"xs": xs})
        return [row["q"] for row in rows]


def test_writes_that_arrive_together_run_as_one_statement(db: Database) -> None:
    reads = _postgres(db)
    run = _Divisions()
    groups: StatementGroups[int, int] = StatementGroups(run)

    async def together() -> list[int]:
        first = await groups.run(reads, 1)  # alone: goes at once
        rest = await asyncio.gather(*(groups.run(reads, x) for x in (2, 3, 4, 6)))
        await reads.close()
        return [first, *rest]

    assert asyncio.run(together()) == [12, 6, 4, 3, 2]
    assert run.groups == [[1], [2, 3, 4, 6]]


def test_a_group_holds_at_most_its_limit_and_the_next_forms_meanwhile(db: Database) -> None:
    reads = _postgres(db)
    run = _Divisions()
    groups: StatementGroups[int, int] = StatementGroups(run, limit=2)

    async def together() -> list[int]:
        answers = await asyncio.gather(*(groups.run(reads, x) for x in (1, 2, 3, 4, 6)))
        await reads.close()
        return answers

    assert asyncio.run(together()) == [12, 6, 4, 3, 2]
    assert run.groups == [[1, 2], [3, 4], [6]]


def test_one_item_that_fails_the_statement_fails_alone(db: Database) -> None:
    """Division by zero fails the group's statement, which stored nothing: each item runs again alone, and only the
    zero's caller gets the error."""
    reads = _postgres(db)
    run = _Divisions()
    groups: StatementGroups[int, int] = StatementGroups(run)

    async def together() -> list[object]:
        answers = await asyncio.gather(*(groups.run(reads, x) for x in (3, 0, 4)), return_exceptions=True)
        await reads.close()
        return answers

    three, zero, four = asyncio.run(together())
    assert (three, four) == (4, 3)
    assert isinstance(zero, sa.exc.DataError)
    assert "division by zero" in str(zero)
    assert run.groups == [[3, 0, 4], [3], [0], [4]]


def test_a_group_whose_connection_was_lost_is_never_run_again(db: Database) -> None:
    """A statement that met a lost connection may have committed: every caller of the group gets the error, and
    nothing runs a second time."""
    reads = _postgres(db)
    calls: list[list[int]] = []

    async def lost(writer: AsyncReader, xs: list[int]) -> list[int]:
        calls.append(xs)
        raise sa.exc.OperationalError(
            "INSERT", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    groups: StatementGroups[int, int] = StatementGroups(lost)

    async def together() -> list[object]:
        await asyncio.sleep(0)
        answers = await asyncio.gather(*(groups.run(reads, x) for x in (1, 2)), return_exceptions=True)
        await reads.close()
        return answers

    answers = asyncio.run(together())
    assert all(isinstance(a, sa.exc.OperationalError) and a.connection_invalidated for a in answers)
    assert answers[0] is not answers[1]  # each caller its own copy
    assert calls == [[1, 2]]


def test_a_caller_that_went_away_before_its_group_ran_is_left_out(db: Database) -> None:
    reads = _postgres(db)
    run = _Divisions()
    groups: StatementGroups[int, int] = StatementGroups(run)

    async def one_leaves() -> int:
        leaving = asyncio.ensure_future(groups.run(reads, 2))
        staying = asyncio.ensure_future(groups.run(reads, 3))
        await asyncio.sleep(0)  # both queued; their group has not run
        leaving.cancel()
        answer = await staying
        await reads.close()
        return answer

    assert asyncio.run(one_leaves()) == 4
    assert run.groups == [[3]]


def test_models_created_together_each_get_their_labels_and_event(db: Database) -> None:
    """The grouped statement of model creates: each new model with its own labels and event; a name taken, in the
    workspace or earlier in the same group, leaves that one out with nothing of it stored."""
    reads = _postgres(db)
    workspace_id = _workspace(db, "grouped")
    taken = _MODEL.row({"workspace_id": workspace_id, "name": "taken"})
    with db.session(write=True) as session:
        writes.insert(session, _MODEL, [taken])
        session.commit()

    def model(name: str, labels: dict[str, str]) -> tuple[writes.Row, writes.Row]:
        row = models.new_model_row({"workspace_id": workspace_id, "name": name, "labels": labels})
        event = events.new_row(actor="a", action="model.created", kind="model", name=name, resource_id=row["id"])
        return row, event

    group = [model("a", {"team": "x", "tier": "1"}), model("taken", {"k": "v"}), model("b", {}), model("a", {"z": "z"})]

    async def insert() -> set[str]:
        async with reads.writing() as writer:
            inserted = await models.insert_models_async(writer, group)
        await reads.close()
        return inserted

    assert asyncio.run(insert()) == {group[0][0]["id"], group[2][0]["id"]}
    with db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT name, labels FROM models ORDER BY name")).all()
        labels = conn.execute(sa.text("SELECT model_id, key, value FROM model_labels ORDER BY key")).all()
        logged = conn.execute(sa.text("SELECT resource_name, resource_id FROM events ORDER BY resource_name")).all()
    assert stored == [("a", {"team": "x", "tier": "1"}), ("b", {}), ("taken", {})]
    assert labels == [(group[0][0]["id"], "team", "x"), (group[0][0]["id"], "tier", "1")]
    assert logged == [("a", group[0][0]["id"]), ("b", group[2][0]["id"])]
