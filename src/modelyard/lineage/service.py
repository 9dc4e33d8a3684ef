"""Datasets, prompts and fine-tuning jobs: create, list, get, change, delete, with Cloudera's messages for
references that do not exist."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.db.match import starts_with
from modelyard.db.unique import insert_unique
from modelyard.errors import BadRequest, Conflict, NotFound
from modelyard.event import service as events
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.lineage.tables import Dataset, FineTuningJob, Prompt
from modelyard.model import repository as models
from modelyard.model.service import model_access
from modelyard.workspace.service import WorkspaceAccess, register_resource_counter
from modelyard.workspace.tables import Role

Record = TypeVar("Record", Dataset, Prompt, FineTuningJob)

KINDS: dict[type[Any], tuple[str, str]] = {
    Dataset: ("dataset", "Dataset"),
    Prompt: ("prompt", "Prompt"),
    FineTuningJob: ("fine_tuning_job", "Fine Tuning Job"),
}


@register_resource_counter
def _count_lineage(session: Session, workspace_id: str) -> dict[str, int]:
    counts = {}
    for table, (kind, _label) in KINDS.items():
        counts[f"{kind}s"] = session.scalar(sa.select(sa.func.count()).where(table.workspace_id == workspace_id)) or 0
    return counts


def _record(session: Session, ws: WorkspaceAccess, action: str, obj: Any, changes: dict[str, Any]) -> None:
    kind = KINDS[type(obj)][0]
    events.record(
        session,
        actor=ws.principal.name,
        action=f"{kind}.{action}",
        kind=kind,
        name=obj.name,
        resource_id=obj.id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


def find(session: Session, table: type[Record], workspace_id: str, name: str) -> Record | None:
    return session.scalar(sa.select(table).where(table.workspace_id == workspace_id, table.name == name))


def not_found(table: type[Any], name: str, workspace: str) -> NotFound:
    label = KINDS[table][1]
    return NotFound(
        f"{label} with name '{name}' does not exist in workspace '{workspace}'.",
        error_code=f"{KINDS[table][0].upper()}_NOT_FOUND",
    )


def get(session: Session, table: type[Record], ws: WorkspaceAccess, name: str) -> Record:
    found = find(session, table, ws.workspace.id, name)
    if found is None:
        raise not_found(table, name, ws.workspace.name)
    return found


def lookup_optional(session: Session, table: type[Record], ws: WorkspaceAccess, name: str | None) -> Record | None:
    return get(session, table, ws, name) if name else None


def _insert(session: Session, ws: WorkspaceAccess, obj: Record) -> Record:
    label = KINDS[type(obj)][1]
    insert_unique(
        session,
        obj,
        Conflict(
            f"{label} with name '{obj.name}' already exists in workspace '{ws.workspace.name}'.",
            error_code=f"{KINDS[type(obj)][0].upper()}_ALREADY_EXISTS",
            solution_msg="Pick another name",
        ),
    )
    _record(session, ws, "created", obj, {})
    return obj


def create_dataset(session: Session, ws: WorkspaceAccess, body: dict[str, Any]) -> Dataset:
    return _insert(session, ws, Dataset(workspace_id=ws.workspace.id, created_by=ws.principal.name, **body))


def create_prompt(session: Session, ws: WorkspaceAccess, body: dict[str, Any]) -> Prompt:
    dataset = lookup_optional(session, Dataset, ws, body.pop("dataset", None))
    return _insert(
        session,
        ws,
        Prompt(
            workspace_id=ws.workspace.id,
            created_by=ws.principal.name,
            dataset_id=dataset.id if dataset else None,
            **body,
        ),
    )


def create_job(session: Session, ws: WorkspaceAccess, body: dict[str, Any]) -> FineTuningJob:
    ref = body.pop("base_model")
    model_ws, _, model_name = ref.rpartition("/")
    if ref.count("/") > 1 or not model_name:
        raise BadRequest(
            f"Invalid base model reference '{ref}': expected 'model' or 'workspace/model'",
            error_code="INVALID_MODEL_REF",
        )
    model = model_access(session, ws.principal, model_ws or ws.workspace.name, model_name, Role.VIEWER).model
    version_name = body.pop("base_model_version", None)
    version = None
    if version_name:
        version = models.get_version(session, model.id, version_name)
        if version is None:
            raise NotFound(f"Version '{version_name}' not found for model '{ref}'", error_code="VERSION_NOT_FOUND")
    dataset = lookup_optional(session, Dataset, ws, body.pop("dataset", None))
    prompt = lookup_optional(session, Prompt, ws, body.pop("prompt", None))
    job = FineTuningJob(
        workspace_id=ws.workspace.id,
        created_by=ws.principal.name,
        base_model_id=model.id,
        base_model_version_id=version.id if version else None,
        dataset_id=dataset.id if dataset else None,
        prompt_id=prompt.id if prompt else None,
        adapter_name=body.pop("adapter_name", None) or "",
        **body,
    )
    return _insert(session, ws, job)


def listing(
    session: Session, table: type[Record], ws: WorkspaceAccess, query: ListQuery
) -> tuple[list[Record], Pagination, str | None]:
    stmt = sa.select(table).where(table.workspace_id == ws.workspace.id)
    if "name_prefix" in query.filters:
        stmt = stmt.where(starts_with(table.name, query.filters["name_prefix"]))
    if "status" in query.filters and table is FineTuningJob:
        stmt = stmt.where(FineTuningJob.status == query.filters["status"])
    return paginate(
        session,
        stmt,
        query,
        columns={"created_at": table.created_at, "updated_at": table.updated_at, "name": table.name},
        tiebreak=table.id,
    )


def update(
    session: Session, table: type[Record], ws: WorkspaceAccess, name: str, changes: dict[str, Any], if_match: str | None
) -> Record:
    obj = get(session, table, ws, name)
    check_if_match(if_match, obj)
    if "dataset" in changes:
        dataset = get(session, Dataset, ws, changes.pop("dataset"))
        changes["dataset_id"] = dataset.id
    applied = apply_changes(obj, changes)
    if applied:
        session.flush()
        _record(
            session,
            ws,
            "updated",
            obj,
            {k: str(v) if not isinstance(v, (str, int, float, dict, list)) else v for k, v in applied.items()},
        )
    return obj


def delete(session: Session, table: type[Record], ws: WorkspaceAccess, name: str, if_match: str | None) -> None:
    obj = get(session, table, ws, name)
    check_if_match(if_match, obj)
    _unlink_adapters(session, ws, obj)
    session.delete(obj)
    _record(session, ws, "deleted", obj, {})


def _unlink_adapters(session: Session, ws: WorkspaceAccess, obj: Any) -> None:
    """The database unlinks adapters from a deleted job or prompt (SET NULL); say so in each adapter's log."""
    from modelyard.adapter.tables import Adapter

    column = {FineTuningJob: Adapter.fine_tuning_job_id, Prompt: Adapter.prompt_id}.get(type(obj))
    if column is None:
        return
    field = "fine_tuning_job" if type(obj) is FineTuningJob else "prompt"
    for adapter in session.scalars(sa.select(Adapter).where(column == obj.id)):
        events.record(
            session,
            actor=ws.principal.name,
            action="adapter.updated",
            kind="adapter",
            name=adapter.name,
            resource_id=adapter.id,
            workspace_id=adapter.workspace_id,
            workspace=ws.workspace.name,
            changes={field: [obj.name, None]},
        )
