"""Models and their versions. A version is created CREATING together with a validation job in one transaction;
the job (model/tasks.py) reads its files and marks it READY or FAILED. Only a READY version can be current; the
first READY version of a model becomes current by itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.adapter import repository as adapters
from modelyard.auth import Principal
from modelyard.db import writes
from modelyard.db.base import row_copy
from modelyard.db.engine import Database
from modelyard.db.group_commit import StatementGroups
from modelyard.db.reads import AsyncReader, Reader, Row
from modelyard.db.unique import insert_row_unique
from modelyard.db.writer_lock import WriteTurnBusy
from modelyard.errors import Conflict, Forbidden, NotFound
from modelyard.event import service as events
from modelyard.fileset.service import register_reference_checker
from modelyard.fileset.tables import Fileset
from modelyard.job import service as jobs
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match, etag_for
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.model import repository
from modelyard.model.sources import SourceRef, parse_local_path, parse_model_path
from modelyard.model.tables import Model, ModelType, ModelVersion, ModelVersionFile, VersionStatus, Visibility
from modelyard.model_template import service as templates
from modelyard.workspace import repository as workspaces
from modelyard.workspace.service import WorkspaceAccess, check_role, register_resource_counter, workspace_not_found
from modelyard.workspace.tables import Role, Workspace

VALIDATE_JOB = "model.validate_version"

# Domains whose resources point at models or versions (adapters) register a function naming them, so a model
# or version is not deleted from under them.
ModelReferenceChecker = Callable[[Session, Model], list[str]]
VersionReferenceChecker = Callable[[Session, ModelVersion], list[str]]
MODEL_REFERENCE_CHECKERS: list[ModelReferenceChecker] = []
VERSION_REFERENCE_CHECKERS: list[VersionReferenceChecker] = []
# Called for each model a cascade delete removes, before it is removed (adapters delete theirs, with events).
CascadeHook = Callable[[Session, "ModelAccess"], None]
CASCADE_HOOKS: list[CascadeHook] = []


@register_resource_counter
def _count_models(session: Session, workspace_id: str) -> dict[str, int]:
    return {"models": repository.count_in_workspace(session, workspace_id)}


@register_reference_checker
def _versions_on_fileset(session: Session, fileset: Fileset) -> list[str]:
    workspace = repository.workspace_name(session, fileset.workspace_id)
    return [
        f"model version '{ws}/{model}@{version}'"
        for ws, model, version in repository.versions_on_fileset(session, workspace, fileset.name)
    ]


@dataclass(frozen=True)
class ModelAccess:
    """A model and who is asking: `ws` carries the caller's role (None for a non-member reading a public model)."""

    ws: WorkspaceAccess
    model: Model

    @property
    def ref(self) -> str:
        return f"{self.ws.workspace.name}/{self.model.name}"


def _model_not_found(workspace: str, name: str) -> NotFound:
    return NotFound(
        f"Model '{name}' not found in workspace '{workspace}'",
        error_code="MODEL_NOT_FOUND",
        solution_msg=f"List the models with GET /v1/workspaces/{workspace}/models",
    )


def model_access(session: Session, principal: Principal, workspace: str, name: str, need: Role) -> ModelAccess:
    """Resolve a model for a request. Members need `need`; anyone authenticated may read a PUBLIC model; for
    everyone else the workspace does not exist."""
    found = repository.get_with_access(session, workspace, name, principal.user_id)
    if found is None:
        raise workspace_not_found(workspace)
    ws, role_value, model = found
    role = _check_access(principal, workspace, name, role_value, model.visibility if model else None, need)
    assert model is not None  # _check_access raised otherwise
    return ModelAccess(WorkspaceAccess(ws, role, principal), model)


def read_model_access(reader: Reader, principal: Principal, workspace: str, name: str, need: Role) -> ModelAccess:
    """model_access() from a prebuilt read: the workspace and the model are transient copies of their rows (no
    session holds them), for writes that add rows under the model and change nothing of it (a new version)."""
    return _model_access_of(
        repository.read_with_access(reader, workspace, name, principal.user_id), principal, workspace, name, need
    )


async def read_model_access_async(
    reader: AsyncReader, principal: Principal, workspace: str, name: str, need: Role
) -> ModelAccess:
    """read_model_access from the event loop (PostgreSQL)."""
    found = await repository.read_with_access_async(reader, workspace, name, principal.user_id)
    return _model_access_of(found, principal, workspace, name, need)


def _model_access_of(
    found: tuple[Row, str | None, Row | None] | None, principal: Principal, workspace: str, name: str, need: Role
) -> ModelAccess:
    if found is None:
        raise workspace_not_found(workspace)
    ws, role_value, model = found
    role = _check_access(principal, workspace, name, role_value, model["visibility"] if model else None, need)
    assert model is not None  # _check_access raised otherwise
    return ModelAccess(WorkspaceAccess(row_copy(Workspace, ws), role, principal), row_copy(Model, model))


def _check_access(
    principal: Principal, workspace: str, name: str, role_value: str | None, visibility: str | None, need: Role
) -> Role | None:
    """The caller's role once they may `need` the model (`visibility` None: it does not exist), or the error. A
    PUBLIC model is readable by everyone; otherwise the workspace's rules apply."""
    if role_value is None and not principal.is_admin and need == Role.VIEWER and visibility == Visibility.PUBLIC.value:
        return None
    role = check_role(principal, workspace, role_value, need)
    if visibility is None:
        raise _model_not_found(workspace, name)
    return role


def read_model(reader: Reader, principal: Principal, workspace: str, name: str) -> tuple[dict[str, Any], str]:
    """GET of a model without the ORM (the path fleets poll): the answer and its ETag. The access rules are
    model_access's."""
    return _model_answer(repository.read_model(reader, workspace, name, principal.user_id), principal, workspace, name)


async def read_model_async(
    reader: AsyncReader, principal: Principal, workspace: str, name: str
) -> tuple[dict[str, Any], str]:
    """read_model from the event loop (PostgreSQL)."""
    found = await repository.read_model_async(reader, workspace, name, principal.user_id)
    return _model_answer(found, principal, workspace, name)


def _model_answer(
    found: tuple[Row, list[Row]] | None, principal: Principal, workspace: str, name: str
) -> tuple[dict[str, Any], str]:
    if found is None:
        raise workspace_not_found(workspace)
    row, summaries = found
    _check_access(principal, workspace, name, row["role"], row["visibility"], Role.VIEWER)
    current = None
    if row["current_version_name"] is not None:
        current = {
            "id": row["current_version_id"],
            "name": row["current_version_name"],
            "status": row["current_version_status"],
            "digest": row["current_version_digest"],
            "spec": row["current_version_spec"],
        }
    answer = _answer(row, row["workspace"], current, summaries)
    return answer, etag_for(row["id"], row["version"])


def model_answers(
    session: Session, models: Sequence[Mapping[str, Any]], workspace: str, *, created: bool = False
) -> list[dict[str, Any]]:
    """Answers (ModelRead's fields, in its order) for model rows of one workspace, in a fixed number of queries.
    `created`: the models were created in this transaction, so no adapter can name them yet (no query for those)."""
    current = repository.current_versions(session, {m["current_version_id"] for m in models if m["current_version_id"]})
    children = {} if created else adapters.summaries_of_models(session, [m["id"] for m in models])
    return [
        _answer(m, workspace, current.get(m["current_version_id"] or ""), children.get(m["id"], [])) for m in models
    ]


def new_model_answer(model: Mapping[str, Any], workspace: str) -> dict[str, Any]:
    """ModelReplaced's answer for a model just created without a version: none is current, no adapter names it yet,
    and nothing was coerced."""
    return _answer(model, workspace, None, []) | {"new_version": None, "coercions": []}


def _answer(
    model: Mapping[str, Any], workspace: str, current: Mapping[str, Any] | None, summaries: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": model["id"],
        "name": model["name"],
        "workspace": workspace,
        "description": model["description"],
        "model_type": model["model_type"],
        "display_name": model["display_name"],
        "visibility": model["visibility"],
        "labels": model["labels"],
        "base_model_metadata": model["base_model_metadata"],
        "model_card": model["model_card"],
        "training_data_card": model["training_data_card"],
        "current_version_id": model["current_version_id"],
        "current_version": (
            {"id": current["id"], "name": current["name"], "status": current["status"], "digest": current["digest"]}
            if current
            else None
        ),
        "spec": current["spec"] if current else None,
        "model_template": model["model_template"],
        "model_template_id": model["model_template_id"],
        "model_creation_parameters": model["model_creation_parameters"],
        "adapters": summaries,
        "created_by": model["created_by"],
        "updated_by": model["updated_by"],
        "created_at": model["created_at"],
        "updated_at": model["updated_at"],
    }


def _record(
    target: Session | writes.DriverTransaction,
    ws: WorkspaceAccess,
    action: str,
    kind: str,
    name: str,
    resource_id: str,
    changes: dict[str, Any],
) -> None:
    events.record(
        target,
        actor=ws.principal.name,
        action=action,
        kind=kind,
        name=name,
        resource_id=resource_id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


# -- models ------------------------------------------------------------------------------------------------------

MODEL_FIELDS = (
    "description",
    "model_type",
    "display_name",
    "visibility",
    "labels",
    "base_model_metadata",
    "model_card",
    "training_data_card",
)


def create_model(
    session: Session,
    ws: WorkspaceAccess,
    fields: dict[str, Any],
    version: dict[str, Any] | None,
    allowed_roots: list[Path],
) -> tuple[dict[str, Any], ModelVersion | None, list[dict[str, Any]]]:
    """The new model's row (and its first version); the third element lists the creation parameters that were coerced
    to their template's declared types. The row goes in as a prebuilt insert (modelyard.db.writes): creating models
    is the write clients repeat most, and on SQLite it holds the write lock."""
    binding = templates.bind_new_model(session, ws, fields)
    row = _new_model(ws, fields, binding)
    try:
        inserted = repository.insert_model(session, row, _created_event(ws, row))
    except IntegrityError as exc:
        raise _model_exists(ws, fields["name"]) from exc
    if not inserted:
        raise _model_exists(ws, fields["name"])
    new_version = None
    if version:
        model = session.get_one(Model, row["id"])
        new_version = create_version(session, ModelAccess(ws, model), version, allowed_roots)
        row = repository.columns_of(model)  # the version may have become current, and the counter moved
    return row, new_version, binding.coercions if binding else []


async def create_model_without_session(
    db: Database, ws: WorkspaceAccess, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """`create_model` from the event loop, without the ORM session: on PostgreSQL as one statement on one of the
    asyncio connections (Database.async_reads), on SQLite as an inline write in this process's write turn, committed
    with the others that came with it (Database.inline_write). The new model's row; None, with nothing done, for a
    model made from a template (whose template the session path reads and checks), or while SQLite's lock is held by
    a writer that takes no turns."""
    if fields.get("model_template") or fields.get("model_creation_parameters"):
        return None
    row = _new_model(ws, fields, None)
    event = _created_event(ws, row)
    try:
        if db.async_reads is not None:
            inserted = await _GROUPED_CREATES.run(db.async_reads, (row, event))
        else:
            inserted = await db.inline_write(lambda transaction: repository.insert_model(transaction, row, event))
    except WriteTurnBusy:
        return None
    except IntegrityError as exc:
        raise _model_exists(ws, fields["name"]) from exc
    if not inserted:
        raise _model_exists(ws, fields["name"])
    return row


async def _insert_models(writer: AsyncReader, models: list[tuple[Row, Row]]) -> list[bool]:
    inserted = await repository.insert_models_async(writer, models)
    return [row["id"] in inserted for row, _event in models]


# The creates of models that reach an event loop together, as one statement on PostgreSQL.
_GROUPED_CREATES: StatementGroups[tuple[Row, Row], bool] = StatementGroups(_insert_models)


def _new_model(ws: WorkspaceAccess, fields: dict[str, Any], binding: templates.TemplateBinding | None) -> Row:
    model_type = binding.model_type if binding else fields.get("model_type") or ModelType.GENERIC.value
    values = {k: fields[k] for k in MODEL_FIELDS if fields.get(k) is not None}
    values.update(
        workspace_id=ws.workspace.id,
        name=fields["name"],
        model_type=model_type,
        created_by=ws.principal.name,
        updated_by=ws.principal.name,
    )
    if binding is not None:
        values.update(
            model_template_id=binding.template.id,
            model_template=binding.ref,
            model_creation_parameters=binding.parameters,
        )
    return repository.new_model_row(values)


def _created_event(ws: WorkspaceAccess, row: Row) -> Row:
    return events.new_row(
        actor=ws.principal.name,
        action="model.created",
        kind="model",
        name=row["name"],
        resource_id=row["id"],
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes={k: row[k] for k in ("model_type", "visibility", "model_template") if row.get(k)},
    )


def _model_exists(ws: WorkspaceAccess, name: str) -> Conflict:
    return Conflict(
        f"Model '{name}' already exists in workspace '{ws.workspace.name}'",
        error_code="MODEL_ALREADY_EXISTS",
        solution_msg="Pick another name, or add a version to the existing model",
    )


def list_models(
    session: Session, ws: WorkspaceAccess, query: ListQuery
) -> tuple[list[dict[str, Any]], Pagination, str | None]:
    """A page of model answers."""
    rows, pagination, token = paginate(
        session,
        repository.models_query(ws.workspace.id, query.filters),
        query,
        columns=repository.MODEL_SORTS,
        tiebreak=repository.MODEL_TIEBREAK,
        rows=True,
    )
    keys = rows[0]._fields if rows else ()
    models = [dict(zip(keys, row, strict=True)) for row in rows]  # plain dicts: cheaper to read than Row mappings
    return model_answers(session, models, ws.workspace.name), pagination, token


def update_model(session: Session, access: ModelAccess, changes: dict[str, Any], if_match: str | None) -> Model:
    model = access.model
    check_if_match(if_match, model)
    templates.check_model_update(model, changes)
    applied = apply_changes(model, changes)
    if applied:
        if "labels" in applied:
            repository.set_labels(session, model.id, model.labels)
        model.updated_by = access.ws.principal.name
        session.flush()
        _record(session, access.ws, "model.updated", "model", model.name, model.id, applied)
    return model


def replace_model(
    session: Session, access: ModelAccess, body: dict[str, Any], if_match: str | None, allowed_roots: list[Path]
) -> tuple[Model, ModelVersion | None]:
    """Huawei's PUT: new name and description, a new current version, and/or a new version (asynchronous)."""
    model = access.model
    check_if_match(if_match, model)
    changes: dict[str, Any] = {}
    if body.get("name") and body["name"] != model.name:
        changes["name"] = [model.name, body["name"]]
        model.name = body["name"]
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"Model '{body['name']}' already exists in workspace '{access.ws.workspace.name}'",
                error_code="MODEL_ALREADY_EXISTS",
                solution_msg="Pick another name",
            ) from exc
    if body.get("description") is not None and body["description"] != model.description:
        changes["description"] = body["description"]
        model.description = body["description"]
    if body.get("current_version_id") and body["current_version_id"] != model.current_version_id:
        set_current_version(session, access, body["current_version_id"], record=False)
        changes["current_version_id"] = body["current_version_id"]
    if changes:
        model.updated_by = access.ws.principal.name
        session.flush()
        _record(session, access.ws, "model.updated", "model", model.name, model.id, changes)
    new_version = create_version(session, access, body["version"], allowed_roots) if body.get("version") else None
    return model, new_version


def set_current_version(session: Session, access: ModelAccess, version_id: str, *, record: bool = True) -> Model:
    model = access.model
    version = repository.get_version_by_id(session, version_id)
    if version is None or version.model_id != model.id:
        raise Conflict(
            f"Version '{version_id}' is not a version of model '{access.ref}'",
            error_code="VERSION_NOT_OF_MODEL",
            solution_msg=f"List the versions with GET /v1/workspaces/{access.ref.replace('/', '/models/', 1)}/versions",
        )
    if version.status != VersionStatus.READY.value:
        raise Conflict(
            f"Version '{version.name}' is {version.status}: only a READY version can be current. "
            "If the version failed, it cannot be updated to the current version",
            error_code="VERSION_NOT_READY",
            solution_msg="Wait until the version is READY, or pick a READY version",
            detail={"version": version.name, "status": version.status},
        )
    old = model.current_version_id
    model.current_version_id = version.id
    model.updated_by = access.ws.principal.name
    session.flush()
    if record:
        _record(
            session,
            access.ws,
            "model.updated",
            "model",
            model.name,
            model.id,
            {"current_version_id": [old, version.id]},
        )
    return model


def delete_model(session: Session, access: ModelAccess, cascade: bool, if_match: str | None) -> None:
    model = access.model
    check_if_match(if_match, model)
    referrers = [ref for checker in MODEL_REFERENCE_CHECKERS for ref in checker(session, model)]
    if referrers and not cascade:
        raise Conflict(
            f"Model '{access.ref}' is in use by {', '.join(referrers)}",
            error_code="MODEL_IN_USE",
            solution_msg="Delete those first, or delete with ?cascade=true to delete them too",
            detail={"referenced_by": referrers},
        )
    # The versions' rows first, then the model's, in the order a version's validation locks them
    # (`finish_validation`), so that the two never wait for each other in a cycle.
    repository.lock_versions(session, model.id)
    if cascade:
        for hook in CASCADE_HOOKS:
            hook(session, access)
    model.current_version_id = None
    session.flush()
    session.delete(model)
    _record(
        session,
        access.ws,
        "model.deleted",
        "model",
        model.name,
        model.id,
        {"cascade": cascade, "referenced_by": referrers},
    )


# -- versions ----------------------------------------------------------------------------------------------------


def _check_source(session: Session, access: ModelAccess, ref: SourceRef) -> None:
    """A fileset in another workspace must be readable by the caller (NeMo answers 403). Whether it exists is for
    the worker to find out."""
    if not _another_workspaces_fileset(access, ref):
        return
    found = workspaces.get_with_role(session, ref.workspace, access.ws.principal.user_id)
    if found is None or found[1] is None:
        raise Forbidden(
            f"You may not read fileset '{ref.workspace}/{ref.fileset}': you are not a member of workspace "
            f"'{ref.workspace}'",
            error_code="FILESET_NOT_READABLE",
            solution_msg=f"Ask an admin of '{ref.workspace}' for access, or copy the files into a fileset of "
            f"'{access.ws.workspace.name}'",
        )


def _another_workspaces_fileset(access: ModelAccess, ref: SourceRef) -> bool:
    """Whether `ref` is a fileset of another workspace than the model's, which a caller other than an admin may
    use only if they may read it there (`_check_source`)."""
    return ref.kind == "fileset" and ref.workspace != access.ws.workspace.name and not access.ws.principal.is_admin


def _model_path_ref(access: ModelAccess, model_path: str) -> SourceRef:
    return parse_model_path(model_path, access.ws.workspace.name, ["body", "config", "llm_model_config", "model_path"])


def create_version(
    session: Session, access: ModelAccess, body: dict[str, Any], allowed_roots: list[Path]
) -> ModelVersion:
    config = body["config"]["llm_model_config"]
    if config.get("model_path"):
        ref = _model_path_ref(access, config["model_path"])
        _check_source(session, access, ref)
    else:
        ref = parse_local_path(config["local_model_path"], allowed_roots)
    row = _add_version(session, access, body, ref)
    if not body.get("name") and access.model in session:
        # The counter's UPDATE changed the model's row behind the session's back (as the unit of work would have,
        # bumping its ETag version): what the session holds of it is read again when next used.
        session.expire(access.model, ["version_counter", "version", "updated_at"])
    # For the answer: the worker changes the row from here on, in transactions of its own.
    return row_copy(ModelVersion, row)


async def create_version_without_session(db: Database, access: ModelAccess, body: dict[str, Any]) -> Row | None:
    """`create_version` from the event loop, for a version of a fileset in the model's own workspace (or any, for an
    admin): on SQLite as an inline write committed with the others that came with it (Database.inline_write), on
    PostgreSQL in statements of their own with the other versions that came with it (`_NEW_VERSIONS`). The new
    version's row; None, with nothing done, for any other (a local path, whose check against the allowed roots reads
    the disk; a fileset of another workspace, whose access the session path checks), or while SQLite's lock is held
    by a writer that takes no turns."""
    model_path = body["config"]["llm_model_config"].get("model_path")
    if not model_path:
        return None
    ref = _model_path_ref(access, model_path)
    if _another_workspaces_fileset(access, ref):
        return None
    if db.async_reads is not None:
        while True:
            try:
                outcome = await _NEW_VERSIONS.run(db.async_reads, (access, body, ref))
            except IntegrityError as exc:  # the model's row went between the counter and the insert
                raise _model_not_found(access.ws.workspace.name, access.model.name) from exc
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None:
                return outcome
            # Its vN was taken by a version named so by hand: the next number.
    if db.writers is None:
        return None
    try:
        return await db.inline_write(lambda transaction: _add_version(transaction, access, body, ref))
    except WriteTurnBusy:
        return None


_NewVersion = tuple[ModelAccess, dict[str, Any], SourceRef]
# What became of each: its row, the error its caller gets, or None for a number taken meanwhile (it tries again).
_VersionOutcome = Row | Exception | None


async def _add_versions(writer: AsyncReader, asked: list[_NewVersion]) -> list[_VersionOutcome]:
    """`_add_version` on PostgreSQL for the versions that came together: the numbers of the unnamed ones taken from
    their models' counters in one statement, then every version with its job and its event in another."""
    counts: dict[str, int] = {}
    for access, body, _ref in asked:
        if not body.get("name"):
            counts[access.model.id] = counts.get(access.model.id, 0) + 1
    last = await repository.reserve_version_numbers_async(writer, counts) if counts else {}
    given = {model_id: number - counts[model_id] for model_id, number in last.items()}  # numbers before the first
    outcomes: list[_VersionOutcome] = []
    new: list[tuple[Row, Row, Row]] = []
    for access, body, ref in asked:
        name = body.get("name")
        if not name:
            if access.model.id not in given:  # deleted since the access check
                outcomes.append(_model_not_found(access.ws.workspace.name, access.model.name))
                continue
            given[access.model.id] += 1
            name = f"v{given[access.model.id]}"
        row = repository.INSERT_VERSION.row({**_version_values(access, body, ref), "name": name})
        job = jobs.new_row(VALIDATE_JOB, {"version_id": row["id"]}, workspace_id=access.ws.workspace.id)
        new.append((row, job, _version_event(access, row)))
        outcomes.append(row)
    inserted = await repository.insert_versions_async(writer, new) if new else set()
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, dict) and outcome["id"] not in inserted:
            access, body, _ref = asked[i]
            outcomes[i] = _version_exists(access, body["name"]) if body.get("name") else None
    return outcomes


# The versions created on PostgreSQL that reach an event loop together.
_NEW_VERSIONS: StatementGroups[_NewVersion, _VersionOutcome] = StatementGroups(_add_versions)


def _version_values(access: ModelAccess, body: dict[str, Any], ref: SourceRef) -> dict[str, Any]:
    config = body["config"]["llm_model_config"]
    return {
        "model_id": access.model.id,
        "description": body.get("description", ""),
        "base_model_type": config["base_model_type"],
        "model_path": config.get("model_path", ""),
        "local_model_path": config.get("local_model_path", ""),
        "created_by": access.ws.principal.name,
        "source": {"kind": ref.kind, "ref": ref.describe()},
    }


def _version_event(access: ModelAccess, row: Row) -> Row:
    return events.new_row(
        actor=access.ws.principal.name,
        action="model_version.created",
        kind="model_version",
        name=f"{access.model.name}@{row['name']}",
        resource_id=row["id"],
        workspace_id=access.ws.workspace.id,
        workspace=access.ws.workspace.name,
        changes={k: row[k] for k in ("base_model_type", "model_path", "local_model_path")},
    )


def _version_exists(access: ModelAccess, name: str) -> Conflict:
    return Conflict(
        f"Version '{name}' already exists for model '{access.ref}'",
        error_code="VERSION_ALREADY_EXISTS",
        solution_msg="Pick another version name, or leave the name out to get the next vN",
    )


def _add_version(
    target: Session | writes.DriverTransaction, access: ModelAccess, body: dict[str, Any], ref: SourceRef
) -> Row:
    """A version's row, its validation job and its event, in `target`'s transaction: named as asked (409 if taken),
    or the next vN of the model's counter."""
    model = access.model
    values = _version_values(access, body, ref)
    if body.get("name"):
        row = repository.INSERT_VERSION.row({**values, "name": body["name"]})
        insert_row_unique(target, repository.INSERT_VERSION, row, _version_exists(access, body["name"]))
    else:
        # The next vN that is free: the counter's UPDATE locks the model's row (on SQLite the write lock is held),
        # which serialises concurrent creates; a vN taken by a version named so by hand is skipped.
        while True:
            number = repository.next_version_number(target, model.id)
            if number is None:  # deleted since the access check
                raise _model_not_found(access.ws.workspace.name, model.name)
            row = repository.INSERT_VERSION.row({**values, "name": f"v{number}"})
            if writes.insert(target, repository.INSERT_VERSION, [row]):
                break
    jobs.enqueue(target, VALIDATE_JOB, {"version_id": row["id"]}, workspace_id=access.ws.workspace.id)
    writes.insert(target, events.INSERT_EVENT, [_version_event(access, row)])
    return row


def get_version(session: Session, access: ModelAccess, name: str) -> ModelVersion:
    version = repository.get_version(session, access.model.id, name)
    if version is None:
        raise NotFound(
            f"Version '{name}' not found for model '{access.ref}'",
            error_code="VERSION_NOT_FOUND",
            solution_msg=f"List the versions with GET /v1/workspaces/{access.ws.workspace.name}/models/"
            f"{access.model.name}/versions",
        )
    return version


def list_versions(
    session: Session, access: ModelAccess, query: ListQuery
) -> tuple[list[ModelVersion], Pagination, str | None]:
    return paginate(
        session,
        repository.versions_query(access.model.id, query.filters),
        query,
        columns={
            "created_at": ModelVersion.created_at,
            "updated_at": ModelVersion.updated_at,
            "name": ModelVersion.name,
        },
        tiebreak=ModelVersion.id,
    )


def list_manifest(
    session: Session, access: ModelAccess, name: str, query: ListQuery
) -> tuple[list[ModelVersionFile], Pagination, str | None]:
    version = get_version(session, access, name)
    return paginate(
        session,
        repository.manifest_query(version.id),
        query,
        columns={"path": ModelVersionFile.path},
        tiebreak=ModelVersionFile.path,
    )


def update_version(
    session: Session, access: ModelAccess, name: str, changes: dict[str, Any], if_match: str | None
) -> ModelVersion:
    version = get_version(session, access, name)
    check_if_match(if_match, version)
    applied = apply_changes(version, changes)
    if applied:
        session.flush()
        _record(
            session,
            access.ws,
            "model_version.updated",
            "model_version",
            f"{access.model.name}@{name}",
            version.id,
            applied,
        )
    return version


def delete_version(session: Session, access: ModelAccess, name: str, if_match: str | None) -> None:
    version = get_version(session, access, name)
    check_if_match(if_match, version)
    if access.model.current_version_id == version.id:
        raise Conflict(
            f"Version '{name}' is the current version of model '{access.ref}'",
            error_code="VERSION_IN_USE",
            solution_msg="Make another READY version current first (PUT the model with current_version_id)",
        )
    referrers = [ref for checker in VERSION_REFERENCE_CHECKERS for ref in checker(session, version)]
    if referrers:
        raise Conflict(
            f"Version '{name}' of model '{access.ref}' is in use by {', '.join(referrers)}",
            error_code="VERSION_IN_USE",
            solution_msg="Delete or rebind those first",
            detail={"referenced_by": referrers},
        )
    session.delete(version)
    _record(session, access.ws, "model_version.deleted", "model_version", f"{access.model.name}@{name}", version.id, {})


# -- the worker's side ---------------------------------------------------------------------------------------------


def finish_validation(
    session: Session,
    version_id: str,
    *,
    ok: bool,
    message: str = "",
    files: list[tuple[str, int, str]] | None = None,
    digest: str | None = None,
    spec: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> bool:
    """Record the outcome of a version's validation; False when there was nothing to do (the version is gone or
    already final, e.g. a job that ran twice)."""
    version = repository.get_version_by_id(session, version_id)
    if version is None or version.status != VersionStatus.CREATING.value:
        return False
    model = repository.get_model_by_id(session, version.model_id)
    if model is None:
        return False
    workspace = repository.workspace_name(session, model.workspace_id)
    name = f"{model.name}@{version.name}"

    def record(
        action: str, changes: dict[str, Any], kind: str = "model_version", rid: str = version.id, rname: str = name
    ) -> None:
        events.record(
            session,
            actor="system",
            action=action,
            kind=kind,
            name=rname,
            resource_id=rid,
            workspace_id=model.workspace_id,
            workspace=workspace,
            changes=changes,
        )

    if not ok:
        version.status = VersionStatus.FAILED.value
        version.status_message = message
        session.flush()
        record("model_version.failed", {"status_message": message})
        return True
    files = files or []
    repository.replace_manifest(session, version.id, files)
    version.status = VersionStatus.READY.value
    version.status_message = message
    version.digest = digest
    version.spec = spec or {}
    version.base_config = config
    version.file_count = len(files)
    version.total_size = sum(size for _p, size, _h in files)
    if source:
        version.source = {**version.source, **source}
    session.flush()
    record("model_version.ready", {"digest": digest, "file_count": version.file_count})
    # Last, just before the commit: the model's row is locked only if this version becomes its current one (its
    # first READY version), and only from here, after the version's row, as a model's delete locks them
    # (`delete_model`). Any other validation leaves the row free, and a new version's counter (the API's UPDATE of
    # that row) never waits for a worker's transaction.
    if repository.make_current_if_none(session, model.id, version.id):
        session.expire(model, ["current_version_id", "version", "updated_at"])
        record(
            "model.updated", {"current_version_id": [None, version.id]}, kind="model", rid=model.id, rname=model.name
        )
    return True
