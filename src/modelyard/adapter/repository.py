"""SQL for adapters."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.adapter.tables import Adapter
from modelyard.db.match import starts_with
from modelyard.db.reads import AsyncReader, Read, Reader, Row
from modelyard.fileset.tables import Fileset
from modelyard.lineage.tables import FineTuningJob, Prompt
from modelyard.model.tables import Model, ModelVersion
from modelyard.workspace.tables import Workspace


def get(session: Session, workspace_id: str, name: str) -> Adapter | None:
    return session.scalar(sa.select(Adapter).where(Adapter.workspace_id == workspace_id, Adapter.name == name))


def adapters_query(workspace_id: str, filters: dict[str, Any]) -> sa.Select[Adapter]:
    stmt = sa.select(Adapter).where(Adapter.workspace_id == workspace_id)
    if "model_id" in filters:
        stmt = stmt.where(Adapter.model_id == filters["model_id"])
    if "enabled" in filters:
        stmt = stmt.where(Adapter.enabled == filters["enabled"])
    if "finetuning_type" in filters:
        stmt = stmt.where(Adapter.finetuning_type == filters["finetuning_type"])
    if "fileset_id" in filters:
        stmt = stmt.where(Adapter.fileset_id == filters["fileset_id"])
    if "name_prefix" in filters:
        stmt = stmt.where(starts_with(Adapter.name, filters["name_prefix"]))
    return stmt


# Built once: every GET of a model runs it.
_OF_MODELS = (
    sa.select(Adapter, Workspace.name)
    .join(Workspace, Workspace.id == Adapter.workspace_id)
    .where(Adapter.model_id.in_(sa.bindparam("model_ids", expanding=True)))
    .order_by(Adapter.created_at, Adapter.id)
)


_A, _BOUND, _AW = (
    Adapter.__table__,
    ModelVersion.__table__.alias("bound"),
    Workspace.__table__.alias("adapter_workspace"),
)
# The adapters listed in a model's answer: AdapterSummary's fields, and the adapter's age and id for the order.
_SUMMARY = {
    "name": _A.c.name,
    "workspace": _AW.c.name,
    "finetuning_type": _A.c.finetuning_type,
    "enabled": _A.c.enabled,
    "model_version": _BOUND.c.name,
}
_SUMMARY_ORDER = {"created_at": _A.c.created_at, "id": _A.c.id}
_SUMMARY_FROM = _A.join(_AW, _AW.c.id == _A.c.workspace_id).outerjoin(_BOUND, _BOUND.c.id == _A.c.model_version_id)
_SUMMARIES_OF_MODELS = (
    sa.select(*(c.label(key) for key, c in _SUMMARY.items()), _A.c.model_id)
    .select_from(_SUMMARY_FROM)
    .where(_A.c.model_id.in_(sa.bindparam("model_ids", expanding=True)))
    .order_by(*_SUMMARY_ORDER.values())
)


_SUMMARIES_OF_MODEL = Read(
    sa.select(*(c.label(key) for key, c in _SUMMARY.items()))
    .select_from(_SUMMARY_FROM)
    .where(_A.c.model_id == sa.bindparam("model_id"))
    .order_by(*_SUMMARY_ORDER.values())
)


def summaries_of_model(reader: Reader, model_id: str) -> list[Row]:
    """Every adapter of a model, from every workspace, oldest first."""
    return reader.all(_SUMMARIES_OF_MODEL, model_id=model_id)


def with_summaries(model: sa.Select[Any], model_id: sa.ScalarSelect[Any]) -> sa.CompoundSelect[*tuple[Any, ...]]:
    """The row that `model` selects, then a row for each adapter of the model whose id `model_id` selects, oldest
    first, in one statement (UNION ALL): a model and its adapters in one round trip, with the model's columns sent
    once (NULL in the adapters' rows, as the adapters' columns `adapter_<field>` are in the model's row).
    `summaries_in` reads the adapters back."""
    adapter_columns = [c.label(f"adapter_{key}") for key, c in {**_SUMMARY, **_SUMMARY_ORDER}.items()]
    head = model.add_columns(
        sa.literal(0).label("row_order"), *(sa.cast(sa.null(), c.type).label(c.name) for c in adapter_columns)
    )
    rows = (
        sa.select(
            *(sa.null().label(c.key) for c in model.selected_columns),
            sa.literal(1).label("row_order"),
            *adapter_columns,
        )
        .select_from(_SUMMARY_FROM)
        .where(_A.c.model_id == model_id)
    )
    # The model's row first, then the adapters in order (a compound statement orders by its columns' names).
    return sa.union_all(head, rows).order_by(
        sa.literal_column("row_order"), *(sa.literal_column(f"adapter_{key}") for key in _SUMMARY_ORDER)
    )


def summaries_in(rows: list[Row]) -> list[Row]:
    """The adapter summaries in the rows of a `with_summaries` statement."""
    return [{key: row[f"adapter_{key}"] for key in _SUMMARY} for row in rows if row["adapter_id"] is not None]


def summaries_of_models(session: Session, model_ids: list[str]) -> dict[str, list[Row]]:
    """The adapters listed in the answers of a page of models (every adapter of each, from every workspace, oldest
    first), in one query."""
    out: dict[str, list[Row]] = {}
    if model_ids:
        result = session.execute(_SUMMARIES_OF_MODELS, {"model_ids": model_ids})
        keys = list(result.keys())[:-1]  # the last column is model_id
        for *values, model_id in result:
            out.setdefault(model_id, []).append(dict(zip(keys, values, strict=True)))
    return out


def of_models(session: Session, model_ids: list[str]) -> dict[str, list[tuple[Adapter, str]]]:
    """Adapters of each model (from every workspace), with their workspace's name."""
    if not model_ids:
        return {}
    rows = session.execute(_OF_MODELS, {"model_ids": model_ids})
    out: dict[str, list[tuple[Adapter, str]]] = {}
    for adapter, workspace in rows:
        out.setdefault(adapter.model_id, []).append((adapter, workspace))
    return out


_MW = Workspace.__table__.alias("model_workspace")
_M = Model.__table__
_JOB, _PROMPT = FineTuningJob.__table__, Prompt.__table__
# GET of an adapter by name without the ORM: the adapter's row with the names its answer shows for its ids, in one
# statement (refs_of's lookups as outer joins), keyed by column name and by the names `ref_<field>`.
_READ_ADAPTER = Read(
    sa.select(
        *(c.label(c.name) for c in _A.c),
        (_MW.c.name + "/" + _M.c.name).label("ref_model"),
        _BOUND.c.name.label("ref_model_version"),
        _JOB.c.name.label("ref_fine_tuning_job"),
        _PROMPT.c.name.label("ref_prompt"),
    )
    .select_from(
        _A.outerjoin(_M, _M.c.id == _A.c.model_id)
        .outerjoin(_MW, _MW.c.id == _M.c.workspace_id)
        .outerjoin(_BOUND, _BOUND.c.id == _A.c.model_version_id)
        .outerjoin(_JOB, _JOB.c.id == _A.c.fine_tuning_job_id)
        .outerjoin(_PROMPT, _PROMPT.c.id == _A.c.prompt_id)
    )
    .where(_A.c.workspace_id == sa.bindparam("workspace_id"), _A.c.name == sa.bindparam("name"))
)
_REF_FIELDS = ("model", "model_version", "fine_tuning_job", "prompt")


def read_with_refs(reader: Reader, workspace_id: str, name: str) -> tuple[Row, dict[str, str | None]] | None:
    """The adapter's row and the names of what it refers to (as refs_of gives them, but the workspace's); None
    when the workspace has no such adapter."""
    return _with_refs(reader.first(_READ_ADAPTER, workspace_id=workspace_id, name=name))


async def read_with_refs_async(
    reader: AsyncReader, workspace_id: str, name: str
) -> tuple[Row, dict[str, str | None]] | None:
    return _with_refs(await reader.first(_READ_ADAPTER, workspace_id=workspace_id, name=name))


def _with_refs(row: Row | None) -> tuple[Row, dict[str, str | None]] | None:
    if row is None:
        return None
    return {c.name: row[c.name] for c in _A.c}, {key: row[f"ref_{key}"] for key in _REF_FIELDS}


def refs_of(session: Session, adapters: list[Adapter]) -> dict[str, dict[str, str | None]]:
    """The names an adapter answer shows for its ids: model ('ws/name'), version, job, prompt, adapter workspace."""
    model_ids = {a.model_id for a in adapters}
    models = (
        {
            mid: f"{ws}/{name}"
            for mid, name, ws in session.execute(
                sa.select(Model.id, Model.name, Workspace.name)
                .join(Workspace, Workspace.id == Model.workspace_id)
                .where(Model.id.in_(model_ids))
            )
        }
        if model_ids
        else {}
    )

    def names(column: Any, id_column: Any, ids: set[str | None]) -> dict[str, str]:
        wanted = {i for i in ids if i}
        return dict(session.execute(sa.select(id_column, column).where(id_column.in_(wanted))).all()) if wanted else {}

    versions = names(ModelVersion.name, ModelVersion.id, {a.model_version_id for a in adapters})
    jobs = names(FineTuningJob.name, FineTuningJob.id, {a.fine_tuning_job_id for a in adapters})
    prompts = names(Prompt.name, Prompt.id, {a.prompt_id for a in adapters})
    workspaces = names(Workspace.name, Workspace.id, {a.workspace_id for a in adapters})
    return {
        a.id: {
            "model": models.get(a.model_id),
            "model_version": versions.get(a.model_version_id or ""),
            "fine_tuning_job": jobs.get(a.fine_tuning_job_id or ""),
            "prompt": prompts.get(a.prompt_id or ""),
            "workspace": workspaces.get(a.workspace_id),
        }
        for a in adapters
    }


def referring(session: Session, column: Any, target_id: str) -> list[tuple[str, str]]:
    """(workspace, adapter) of the adapters whose `column` (model_id, model_version_id, fileset_id) is `target_id`."""
    rows = session.execute(
        sa.select(Workspace.name, Adapter.name)
        .join(Workspace, Workspace.id == Adapter.workspace_id)
        .where(column == target_id)
        .order_by(Workspace.name, Adapter.name)
    )
    return [(w, a) for w, a in rows]


def count_in_workspace(session: Session, workspace_id: str) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Adapter.workspace_id == workspace_id)) or 0


def fileset_by_ref(session: Session, workspace: str, name: str) -> tuple[Fileset, str] | None:
    row = session.execute(
        sa.select(Fileset, Workspace.name)
        .join(Workspace, Workspace.id == Fileset.workspace_id)
        .where(Workspace.name == workspace, Fileset.name == name)
    ).first()
    return (row[0], row[1]) if row else None
