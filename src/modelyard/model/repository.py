"""SQL for models, labels, versions and manifests."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.adapter import repository as adapters
from modelyard.db import writes
from modelyard.db.base import utcnow
from modelyard.db.match import starts_with
from modelyard.db.reads import AsyncReader, Read, Reader, Row
from modelyard.event import service as events
from modelyard.job import service as jobs
from modelyard.model.tables import Model, ModelLabel, ModelVersion, ModelVersionFile
from modelyard.workspace.tables import Membership, Workspace

# Built once: the statement behind every model-scoped request (GET of a model is the hottest path there is).
_ACCESS = (
    sa.select(Workspace, Membership.role, Model)
    .outerjoin(
        Membership,
        sa.and_(Membership.workspace_id == Workspace.id, Membership.user_id == sa.bindparam("user_id")),
    )
    .outerjoin(Model, sa.and_(Model.workspace_id == Workspace.id, Model.name == sa.bindparam("model")))
    .where(Workspace.name == sa.bindparam("workspace"))
)


def get_with_access(
    session: Session, workspace: str, name: str, user_id: str
) -> tuple[Workspace, str | None, Model | None] | None:
    """The workspace, the user's role in it and the model (None when absent), in one query; None when the
    workspace does not exist."""
    row = session.execute(_ACCESS, {"workspace": workspace, "model": name, "user_id": user_id}).first()
    return (row[0], row[1], row[2]) if row else None


_W, _M, _V = Workspace.__table__, Model.__table__, ModelVersion.__table__
# The rows of the prebuilt reads below, as _ACCESS joins them: the workspace by name, the caller's membership of it
# and the model by name, the last two outer-joined.
_WITH_ACCESS = _W.outerjoin(
    Membership.__table__,
    sa.and_(Membership.workspace_id == _W.c.id, Membership.user_id == sa.bindparam("user_id")),
).outerjoin(_M, sa.and_(_M.c.workspace_id == _W.c.id, _M.c.name == sa.bindparam("model")))
# The answer to GET of a model without the ORM (modelyard.db.reads): workspace, the caller's role, the model and its
# current version in one row, keyed by the answer's field names.
_MODEL_ROW = (
    sa.select(
        _W.c.id.label("workspace_id"),
        _W.c.name.label("workspace"),
        Membership.role.label("role"),
        *(c.label(c.name) for c in _M.c if c.name not in ("workspace_id", "version_counter")),
        _V.c.name.label("current_version_name"),
        _V.c.status.label("current_version_status"),
        _V.c.digest.label("current_version_digest"),
        _V.c.spec.label("current_version_spec"),
    )
    .select_from(_WITH_ACCESS.outerjoin(_V, _V.c.id == _M.c.current_version_id))
    .where(_W.c.name == sa.bindparam("workspace"))
)
_READ_MODEL = Read(_MODEL_ROW)
# The same row followed by the summaries of the model's adapters, in one statement: on PostgreSQL a statement is a
# round trip, and a GET by name on two processes answered 10-12% more with one than with two (bench/RESULTS.md).
# On SQLite, where a statement is a call into the library, the compound statement cost more than the two
# (read_model).
_READ_MODEL_AND_ADAPTERS = Read(
    adapters.with_summaries(
        _MODEL_ROW,
        sa.select(_M.c.id)
        .join(_W, _W.c.id == _M.c.workspace_id)
        .where(_W.c.name == sa.bindparam("workspace"), _M.c.name == sa.bindparam("model"))
        .scalar_subquery(),
    )
)
# get_with_access as a prebuilt read: the workspace's columns (w_...), the caller's role and the model's (m_...).
_READ_ACCESS = Read(
    sa.select(
        *(c.label(f"w_{c.name}") for c in _W.c),
        Membership.role.label("role"),
        *(c.label(f"m_{c.name}") for c in _M.c),
    )
    .select_from(_WITH_ACCESS)
    .where(_W.c.name == sa.bindparam("workspace"))
)


def read_with_access(
    reader: Reader, workspace: str, name: str, user_id: str
) -> tuple[Row, str | None, Row | None] | None:
    """get_with_access's rows as dicts: the workspace's, the user's role and the model's (None when absent); None
    when the workspace does not exist."""
    return _with_access(reader.first(_READ_ACCESS, workspace=workspace, model=name, user_id=user_id))


async def read_with_access_async(
    reader: AsyncReader, workspace: str, name: str, user_id: str
) -> tuple[Row, str | None, Row | None] | None:
    return _with_access(await reader.first(_READ_ACCESS, workspace=workspace, model=name, user_id=user_id))


def _with_access(row: Row | None) -> tuple[Row, str | None, Row | None] | None:
    if row is None:
        return None
    workspace_row = {c.name: row[f"w_{c.name}"] for c in _W.c}
    model_row = {c.name: row[f"m_{c.name}"] for c in _M.c}
    return workspace_row, row["role"], model_row if model_row["id"] is not None else None


def read_model(reader: Reader, workspace: str, name: str, user_id: str) -> tuple[Row, list[Row]] | None:
    """The row behind GET of a model (its `id` is None when the workspace exists but the model does not) and the
    summaries of the model's adapters; None when the workspace does not exist."""
    row = reader.first(_READ_MODEL, workspace=workspace, model=name, user_id=user_id)
    if row is None:
        return None
    return row, adapters.summaries_of_model(reader, row["id"]) if row["id"] is not None else []


async def read_model_async(
    reader: AsyncReader, workspace: str, name: str, user_id: str
) -> tuple[Row, list[Row]] | None:
    """read_model from the event loop on PostgreSQL, in one statement (one round trip)."""
    rows = await reader.all(_READ_MODEL_AND_ADAPTERS, workspace=workspace, model=name, user_id=user_id)
    return (rows[0], adapters.summaries_in(rows)) if rows else None


def get_model(session: Session, workspace_id: str, name: str) -> Model | None:
    return session.scalar(sa.select(Model).where(Model.workspace_id == workspace_id, Model.name == name))


def get_model_by_id(session: Session, model_id: str) -> Model | None:
    return session.get(Model, model_id)


# The model's version counter moved on, with its row's version (its ETag) and updated_at, as the unit of work would
# move them for an update of the model.
_NEXT_VERSION = writes.Returning(
    sa.update(cast(sa.Table, _M))
    .where(_M.c.id == sa.bindparam("model_id"))
    .values(version_counter=_M.c.version_counter + 1, version=_M.c.version + 1, updated_at=sa.bindparam("now")),
    [_M.c.version_counter],
)


def next_version_number(target: Session | writes.DriverTransaction, model_id: str) -> int | None:
    """The next number of the model's counter of unnamed versions (v1, v2, ...), counted in its row, which stays
    locked until the transaction ends; None if the model is gone."""
    rows = writes.returning(target, _NEXT_VERSION, {"model_id": model_id, "now": utcnow()})
    return int(rows[0]["version_counter"]) if rows else None


# The models are found by their ids, given as a list with each model's id once per number it takes (a model with
# three new versions in the group is there three times): an index scan of the primary key whatever the planner
# thinks the table holds. (A join with the group's rows was planned as a scan of the whole table from statistics
# taken when it was small, which a prepared statement's plan kept as it grew: 45 ms a statement at 43,000 models.)
_IDS = sa.func.string_to_array(sa.bindparam("ids", type_=sa.Text), ",")
# Their rows are locked first, in the order of their ids: two groups that share models (from two processes) would
# otherwise lock them in the order each one meets them, and could deadlock, which PostgreSQL detects only after
# deadlock_timeout (1 s) and breaks by failing one of them (measured: a p99 of 0.9 s). FOR NO KEY UPDATE, as the
# UPDATE itself takes: FOR UPDATE would also wait for the key-share locks of the versions' inserts (their foreign
# key to the model), which take them in their own order.
_LOCKED = (
    sa.select(_M.c.id)
    .where(_M.c.id == sa.any_(_IDS))
    .order_by(_M.c.id)
    .with_for_update(key_share=True)
    .cte("locked")
    .prefix_with("MATERIALIZED")
)
_COUNT = sa.func.cardinality(sa.func.array_positions(_IDS, sa.cast(_M.c.id, sa.Text)))  # the times it is listed
_RESERVE_VERSIONS = writes.Returning(
    sa.update(cast(sa.Table, _M))
    .where(_M.c.id == sa.any_(_IDS), sa.exists(sa.select(_LOCKED.c.id).where(_LOCKED.c.id == _M.c.id)))
    .values(
        version_counter=_M.c.version_counter + _COUNT, version=_M.c.version + _COUNT, updated_at=sa.bindparam("now")
    ),
    [_M.c.id, _M.c.version_counter],
)


async def reserve_version_numbers_async(writer: AsyncReader, counts: dict[str, int]) -> dict[str, int]:
    """On PostgreSQL from the event loop: `counts[model_id]` numbers of unnamed versions taken from each model's
    counter, in one statement, its own transaction; each model's counter after (its last number taken), by model id.
    A model that is gone is left out. (Numbers whose versions then fail to go in stay unused, as a sequence's.)"""
    params = {"ids": ",".join(model_id for model_id, n in counts.items() for _ in range(n)), "now": utcnow()}
    rows = await writer.change(_RESERVE_VERSIONS.prepared(writer.dialect), params)
    return {row["id"]: int(row["version_counter"]) for row in rows}


# A model's first READY version becomes its current one, with its row's version (its ETag) and updated_at moved as
# the unit of work would move them. The condition is evaluated again on a row another transaction changed meanwhile
# (PostgreSQL's READ COMMITTED), and a row that does not match is not locked.
_MAKE_CURRENT_IF_NONE = (
    sa.update(cast(sa.Table, _M))
    .where(_M.c.id == sa.bindparam("model_id"), _M.c.current_version_id.is_(None))
    .values(current_version_id=sa.bindparam("version_id"), version=_M.c.version + 1, updated_at=sa.bindparam("now"))
)


def lock_versions(session: Session, model_id: str) -> None:
    """Lock the rows of the model's versions (PostgreSQL), in the order of their ids, until the transaction ends."""
    session.execute(sa.select(_V.c.id).where(_V.c.model_id == model_id).order_by(_V.c.id).with_for_update())


def make_current_if_none(session: Session, model_id: str, version_id: str) -> bool:
    """Make `version_id` the model's current version if it has none; whether it did. The model's row stays locked
    until the transaction ends only if it did. The copy of the model a session holds is then out of date."""
    result = session.execute(_MAKE_CURRENT_IF_NONE, {"model_id": model_id, "version_id": version_id, "now": utcnow()})
    return cast(sa.CursorResult[Any], result).rowcount == 1


# Lists select the table's columns (Core rows, not ORM objects: a page of 100 models is built without an identity
# map), sorted by these.
MODEL_SORTS = {"created_at": _M.c.created_at, "updated_at": _M.c.updated_at, "name": _M.c.name}
MODEL_TIEBREAK = _M.c.id


def models_query(workspace_id: str, filters: dict[str, Any]) -> sa.Select[Any]:
    stmt = sa.select(*_M.c).where(_M.c.workspace_id == workspace_id)
    if "model_type" in filters:
        stmt = stmt.where(_M.c.model_type == filters["model_type"])
    if "visibility" in filters:
        stmt = stmt.where(_M.c.visibility == filters["visibility"])
    if "name_prefix" in filters:
        stmt = stmt.where(starts_with(_M.c.name, filters["name_prefix"]))
    if "has_adapters" in filters:
        from modelyard.adapter.tables import Adapter

        adapter = Adapter.__table__
        has = sa.exists().where(adapter.c.model_id == _M.c.id)
        stmt = stmt.where(has if filters["has_adapters"] else ~has)
    labels = ModelLabel.__table__
    for label in filters.get("label", []):
        key, value = label.split(":", 1)
        stmt = stmt.where(sa.exists().where(labels.c.model_id == _M.c.id, labels.c.key == key, labels.c.value == value))
    return stmt


def columns_of(model: Model) -> dict[str, Any]:
    """An ORM model as the row a list reads (the answers are built from rows)."""
    return {c.key: getattr(model, c.key) for c in _M.c}


_CURRENT_VERSIONS = sa.select(_V.c.id, _V.c.name, _V.c.status, _V.c.digest, _V.c.spec).where(
    _V.c.id.in_(sa.bindparam("ids", expanding=True))
)


def current_versions(session: Session, ids: set[str]) -> dict[str, Row]:
    """What a model's answer shows of its current version, by version id."""
    if not ids:
        return {}
    result = session.execute(_CURRENT_VERSIONS, {"ids": list(ids)})
    keys = list(result.keys())
    return {values[0]: dict(zip(keys, values, strict=True)) for values in result}


def count_in_workspace(session: Session, workspace_id: str) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Model.workspace_id == workspace_id)) or 0


def set_labels(session: Session, model_id: str, labels: dict[str, str]) -> None:
    session.execute(sa.delete(ModelLabel).where(ModelLabel.model_id == model_id))
    add_labels(session, model_id, labels)


def add_labels(target: Session | writes.DriverTransaction, model_id: str, labels: dict[str, str]) -> None:
    rows = [_INSERT_LABEL.row({"model_id": model_id, "key": k, "value": v}) for k, v in labels.items()]
    writes.insert(target, _INSERT_LABEL, rows)


_INSERT_MODEL = writes.Insert(_M, skip_conflicts=True)
_INSERT_LABEL = writes.Insert(ModelLabel.__table__)
_LABELS, _EVENTS = "label_", "event_"


def _with_models(head: sa.CTE, rows: dict[str, sa.TableValuedAlias]) -> list[sa.Insert]:
    """What goes in with the new models that went in: their labels and their events."""
    labels, events_ = rows[_LABELS], rows[_EVENTS]
    return [
        _INSERT_LABEL.joined_to(labels, head, labels.c.model_id == head.c.id),
        events.INSERT_EVENT.joined_to(events_, head, events_.c.resource_id == head.c.id),
    ]


_NEW_MODELS = writes.Guarded(_INSERT_MODEL, "id", {_LABELS: _INSERT_LABEL, _EVENTS: events.INSERT_EVENT}, _with_models)


def insert_model(target: Session | writes.DriverTransaction, row: Row, event: Row) -> bool:
    """Insert a new model's row (built by `new_model_row`), its labels and its event in `target`'s transaction (a
    session's, or on SQLite an inline write's); False, with nothing inserted, if the workspace has a model of that
    name."""
    if not writes.insert(target, _INSERT_MODEL, [row]):
        return False
    add_labels(target, row["id"], row["labels"])  # a new model has none to replace
    writes.insert(target, events.INSERT_EVENT, [event])
    return True


async def insert_models_async(writer: AsyncReader, models: list[tuple[Row, Row]]) -> set[str]:
    """`insert_model` on PostgreSQL from the event loop for several models at once (each a row and its event), in one
    statement (writes.Guarded), its own transaction; the ids of those that went in (not one whose name its workspace
    has, nor the second of two of the same name)."""
    labels = [
        _INSERT_LABEL.row({"model_id": row["id"], "key": k, "value": v})
        for row, _event in models
        for k, v in row["labels"].items()
    ]
    rows = {writes.Guarded.HEAD: [row for row, _event in models], _LABELS: labels, _EVENTS: [e for _r, e in models]}
    return await _NEW_MODELS.run(writer, rows)


INSERT_VERSION = writes.Insert(ModelVersion.__table__, skip_conflicts=True)
_JOBS = "job_"


def _with_versions(head: sa.CTE, rows: dict[str, sa.TableValuedAlias]) -> list[sa.Insert]:
    """What goes in with the new versions that went in: their validation jobs (by the version id in the payload)
    and their events."""
    jobs_, events_ = rows[_JOBS], rows[_EVENTS]
    return [
        jobs.INSERT_JOB.joined_to(jobs_, head, jobs_.c.payload["version_id"].as_string() == head.c.id),
        events.INSERT_EVENT.joined_to(events_, head, events_.c.resource_id == head.c.id),
    ]


_NEW_VERSIONS = writes.Guarded(
    INSERT_VERSION, "id", {_JOBS: jobs.INSERT_JOB, _EVENTS: events.INSERT_EVENT}, _with_versions
)


async def insert_versions_async(writer: AsyncReader, versions: list[tuple[Row, Row, Row]]) -> set[str]:
    """On PostgreSQL from the event loop: new versions (each its row, its validation job's and its event's) in one
    statement, its own transaction; the ids of those that went in (not one whose name its model has)."""
    rows = {
        writes.Guarded.HEAD: [version for version, _job, _event in versions],
        _JOBS: [job for _version, job, _event in versions],
        _EVENTS: [event for _version, _job, event in versions],
    }
    return await _NEW_VERSIONS.run(writer, rows)


def new_model_row(values: Row) -> Row:
    """A new model's row: `values` with every other column's default, as `insert_model` stores it."""
    return _INSERT_MODEL.row(values)


def get_version(session: Session, model_id: str, name: str) -> ModelVersion | None:
    return session.scalar(sa.select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.name == name))


# What a version's validation job reads first: the version's state and paths, and its model's workspace (a path
# such as 'fileset-name/subdir' is resolved in it).
_TO_VALIDATE = Read(
    sa.select(
        _V.c.status.label("status"),
        _V.c.model_path.label("model_path"),
        _V.c.local_model_path.label("local_model_path"),
        _W.c.name.label("workspace"),
    )
    .select_from(_V.outerjoin(_M, _M.c.id == _V.c.model_id).outerjoin(_W, _W.c.id == _M.c.workspace_id))
    .where(_V.c.id == sa.bindparam("version_id"))
)


def read_version_to_validate(reader: Reader, version_id: str) -> Row | None:
    return reader.first(_TO_VALIDATE, version_id=version_id)


def get_version_by_id(session: Session, version_id: str) -> ModelVersion | None:
    return session.get(ModelVersion, version_id)


def versions_query(model_id: str, filters: dict[str, Any]) -> sa.Select[ModelVersion]:
    stmt = sa.select(ModelVersion).where(ModelVersion.model_id == model_id)
    if "status" in filters:
        stmt = stmt.where(ModelVersion.status == filters["status"])
    if "name_prefix" in filters:
        stmt = stmt.where(starts_with(ModelVersion.name, filters["name_prefix"]))
    return stmt


def manifest_query(version_id: str) -> sa.Select[ModelVersionFile]:
    return sa.select(ModelVersionFile).where(ModelVersionFile.version_id == version_id)


def replace_manifest(session: Session, version_id: str, files: list[tuple[str, int, str]]) -> None:
    session.execute(sa.delete(ModelVersionFile).where(ModelVersionFile.version_id == version_id))
    if files:
        session.execute(
            sa.insert(ModelVersionFile),
            [{"version_id": version_id, "path": p, "size": s, "sha256": h} for p, s, h in files],
        )


def base_model_types(session: Session, user_id: str | None) -> list[dict[str, Any]]:
    """Per base model type: how many versions declare it and what their configs said. With a user, only the
    versions of models in that user's workspaces and public models count."""
    stmt = sa.select(ModelVersion.base_model_type, ModelVersion.status, ModelVersion.spec).join(
        Model, Model.id == ModelVersion.model_id
    )
    if user_id is not None:
        member = sa.exists().where(Membership.workspace_id == Model.workspace_id, Membership.user_id == user_id)
        stmt = stmt.where(sa.or_(member, Model.visibility == "PUBLIC"))
    summary: dict[str, dict[str, Any]] = {}
    for base_type, status, spec in session.execute(stmt):
        entry = summary.setdefault(
            base_type,
            {
                "base_model_type": base_type,
                "versions": 0,
                "ready_versions": 0,
                "architectures": set(),
                "families": set(),
                "max_position_embeddings": None,
            },
        )
        entry["versions"] += 1
        if status == "READY":
            entry["ready_versions"] += 1
            spec = spec or {}
            if spec.get("architecture"):
                entry["architectures"].add(spec["architecture"])
            if spec.get("family"):
                entry["families"].add(spec["family"])
            context = spec.get("max_position_embeddings")
            if isinstance(context, int):
                entry["max_position_embeddings"] = max(entry["max_position_embeddings"] or 0, context)
    out = []
    for entry in sorted(summary.values(), key=lambda e: e["base_model_type"]):
        entry["architectures"] = sorted(entry["architectures"])
        entry["families"] = sorted(entry["families"])
        out.append(entry)
    return out


def workspace_name(session: Session, workspace_id: str) -> str:
    return session.scalar(sa.select(Workspace.name).where(Workspace.id == workspace_id)) or ""


def versions_on_fileset(session: Session, workspace: str, fileset: str) -> list[tuple[str, str, str]]:
    """(workspace, model, version) of the versions whose model_path names this fileset."""
    refs = [f"{workspace}/{fileset}", f"fileset://{workspace}/{fileset}"]
    like = f"fileset://{workspace}/{fileset}/%"
    stmt = (
        sa.select(Workspace.name, Model.name, ModelVersion.name)
        .join(Model, Model.id == ModelVersion.model_id)
        .join(Workspace, Workspace.id == Model.workspace_id)
        .where(
            sa.or_(
                ModelVersion.model_path.in_(refs),
                ModelVersion.model_path.like(like),
                sa.and_(ModelVersion.model_path == fileset, Workspace.name == workspace),
            )
        )
        .order_by(Workspace.name, Model.name, ModelVersion.name)
    )
    return [(w, m, v) for w, m, v in session.execute(stmt)]
