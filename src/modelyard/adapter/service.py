"""Adapters: registration in Cloudera's order with NeMo's status codes, the compatibility check against the base
model version, lineage links, and the rules that keep models, versions and filesets from being deleted under them.

Files that can be read now (a fileset, a local directory) are checked during the request: an incompatible adapter is
refused (422 ADAPTER_INCOMPATIBLE) unless `allow_incompatible`, which stores it disabled. A Hugging Face adapter is
checked by a worker job; its compatibility is `unknown` until then."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from modelyard.adapter import inspection, repository
from modelyard.adapter.tables import Adapter
from modelyard.auth import Principal
from modelyard.config import Settings
from modelyard.db.base import row_copy
from modelyard.db.engine import Database
from modelyard.db.reads import AsyncReader, Reader
from modelyard.db.unique import insert_unique
from modelyard.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from modelyard.event import service as events
from modelyard.fileset.service import register_reference_checker
from modelyard.fileset.tables import Fileset
from modelyard.job import service as jobs
from modelyard.kit.etag import check_if_match
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.lineage import service as lineage
from modelyard.lineage.tables import FineTuningJob, Prompt
from modelyard.model import repository as models
from modelyard.model import service as model_service
from modelyard.model.files import FilesetSource, LocalSource, SourceError
from modelyard.model.service import ModelAccess
from modelyard.model.sources import SourceRef, parse_local_path
from modelyard.model.tables import Model, ModelVersion, VersionStatus
from modelyard.storage import BlobStore
from modelyard.workspace import repository as workspaces
from modelyard.workspace.service import WorkspaceAccess, register_resource_counter
from modelyard.workspace.tables import Role

INSPECT_JOB = "adapter.inspect"
UNKNOWN: dict[str, Any] = {"status": "unknown", "base_version": None, "checks": [], "warnings": []}


# -- what adapters hold on to ----------------------------------------------------------------------------------------


@register_resource_counter
def _count_adapters(session: Session, workspace_id: str) -> dict[str, int]:
    return {"adapters": repository.count_in_workspace(session, workspace_id)}


@register_reference_checker
def _adapters_on_fileset(session: Session, fileset: Fileset) -> list[str]:
    return [f"adapter '{w}/{a}'" for w, a in repository.referring(session, Adapter.fileset_id, fileset.id)]


def _adapters_on_model(session: Session, model: Model) -> list[str]:
    return [f"adapter '{w}/{a}'" for w, a in repository.referring(session, Adapter.model_id, model.id)]


def _adapters_on_version(session: Session, version: ModelVersion) -> list[str]:
    return [f"adapter '{w}/{a}'" for w, a in repository.referring(session, Adapter.model_version_id, version.id)]


def _cascade(session: Session, access: ModelAccess) -> None:
    """Delete the model's adapters one by one, so each deletion is in its workspace's event log."""
    for adapter, workspace in repository.of_models(session, [access.model.id]).get(access.model.id, []):
        session.delete(adapter)
        events.record(
            session,
            actor=access.ws.principal.name,
            action="adapter.deleted",
            kind="adapter",
            name=adapter.name,
            resource_id=adapter.id,
            workspace_id=adapter.workspace_id,
            workspace=workspace,
            changes={"cascade_from_model": access.ref},
        )


model_service.MODEL_REFERENCE_CHECKERS.append(_adapters_on_model)
model_service.VERSION_REFERENCE_CHECKERS.append(_adapters_on_version)
model_service.CASCADE_HOOKS.append(_cascade)


# -- lookups ---------------------------------------------------------------------------------------------------------


def not_found(name: str, workspace: str) -> NotFound:
    return NotFound(
        f"Adapter '{name}' not found in workspace '{workspace}'",
        error_code="ADAPTER_NOT_FOUND",
        solution_msg=f"List the adapters with GET /v1/workspaces/{workspace}/adapters",
    )


def read_adapter(reader: Reader, ws: WorkspaceAccess, name: str) -> tuple[Adapter, dict[str, str | None]]:
    """GET of an adapter without the ORM (the path serving fleets poll): a transient copy of its row and the names
    its answer shows (repository.refs_of's)."""
    return _adapter_with_refs(repository.read_with_refs(reader, ws.workspace.id, name), ws, name)


async def read_adapter_async(
    reader: AsyncReader, ws: WorkspaceAccess, name: str
) -> tuple[Adapter, dict[str, str | None]]:
    """read_adapter from the event loop (PostgreSQL)."""
    return _adapter_with_refs(await repository.read_with_refs_async(reader, ws.workspace.id, name), ws, name)


def read_model_adapter(
    reader: Reader, ws: WorkspaceAccess, model: str, name: str
) -> tuple[Adapter, dict[str, str | None]]:
    """read_adapter under a model of the workspace (the nested path): the model must be readable, and the
    adapter one of its own."""
    base = model_service.read_model_access(reader, ws.principal, ws.workspace.name, model, Role.VIEWER).model
    return _of_model(read_adapter(reader, ws, name), base, ws, name)


async def read_model_adapter_async(
    reader: AsyncReader, ws: WorkspaceAccess, model: str, name: str
) -> tuple[Adapter, dict[str, str | None]]:
    """read_model_adapter from the event loop (PostgreSQL)."""
    access = await model_service.read_model_access_async(reader, ws.principal, ws.workspace.name, model, Role.VIEWER)
    return _of_model(await read_adapter_async(reader, ws, name), access.model, ws, name)


def _of_model(
    found: tuple[Adapter, dict[str, str | None]], model: Model, ws: WorkspaceAccess, name: str
) -> tuple[Adapter, dict[str, str | None]]:
    if found[0].model_id != model.id:
        raise not_found(name, ws.workspace.name)
    return found


def _adapter_with_refs(
    found: tuple[dict[str, Any], dict[str, str | None]] | None, ws: WorkspaceAccess, name: str
) -> tuple[Adapter, dict[str, str | None]]:
    if found is None:
        raise not_found(name, ws.workspace.name)
    row, refs = found
    return row_copy(Adapter, row), {**refs, "workspace": ws.workspace.name}


def get_adapter(session: Session, ws: WorkspaceAccess, name: str, model: Model | None = None) -> Adapter:
    adapter = repository.get(session, ws.workspace.id, name)
    if adapter is None or (model is not None and adapter.model_id != model.id):
        raise not_found(name, ws.workspace.name)
    return adapter


def split_ref(ref: str, default_workspace: str, what: str) -> tuple[str, str]:
    parts = ref.strip().split("/")
    if len(parts) == 1 and parts[0]:
        return default_workspace, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise BadRequest(
        f"invalid {what} reference '{ref}'; expected 'name' or 'workspace/name'", error_code="INVALID_REFERENCE"
    )


def resolve_model(session: Session, principal: Principal, ref: str, default_workspace: str) -> ModelAccess:
    workspace, name = split_ref(ref, default_workspace, "model")
    try:
        return model_service.model_access(session, principal, workspace, name, Role.VIEWER)
    except NotFound as exc:
        raise NotFound(
            f"Base model for adapter (model='{workspace}/{name}') not found",
            error_code="MODEL_NOT_FOUND",
            solution_msg="Check the model's name and workspace, and that you can read it",
        ) from exc


def resolve_fileset(session: Session, ws: WorkspaceAccess, ref: str) -> tuple[Fileset, str]:
    """NeMo's check_fileset_access: a bad reference is 400, a fileset the caller may not read 403, a missing one
    400 (not 404: the request is well-formed but refers to something unusable)."""
    workspace, name = split_ref(ref, ws.workspace.name, "fileset")
    if workspace != ws.workspace.name and not ws.principal.is_admin:
        found = workspaces.get_with_role(session, workspace, ws.principal.user_id)
        if found is None or found[1] is None:
            raise Forbidden(
                f"Access denied to fileset '{workspace}/{name}'",
                error_code="FILESET_NOT_READABLE",
                solution_msg=f"Ask an admin of '{workspace}' for access",
            )
    fileset = repository.fileset_by_ref(session, workspace, name)
    if fileset is None:
        raise BadRequest(
            f"Fileset '{workspace}/{name}' not found in workspace '{workspace}'",
            error_code="FILESET_NOT_FOUND",
            solution_msg=f"Create it and upload the adapter's files, e.g. `modelyard adapters add "
            f"{ws.workspace.name}/<model> ./adapter-dir --name <name>`",
        )
    return fileset


def _record(session: Session, ws: WorkspaceAccess, action: str, adapter: Adapter, changes: dict[str, Any]) -> None:
    events.record(
        session,
        actor=ws.principal.name,
        action=action,
        kind="adapter",
        name=adapter.name,
        resource_id=adapter.id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


# -- registration ----------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What registration needs besides the request: settings (allowed roots), the store, the database."""

    settings: Settings
    store: BlobStore
    db: Database


def _incompatible(report: dict[str, Any]) -> ValidationFailed:
    failing = [c for c in report.get("checks", []) if not c["ok"]]
    return ValidationFailed(
        "The adapter does not fit its base model: " + "; ".join(c["message"] for c in failing),
        error_code="ADAPTER_INCOMPATIBLE",
        solution_msg="Register it against the base model it was trained on, or store it disabled with "
        "?allow_incompatible=true",
        detail=[{"loc": ["compatibility", c["name"]], "msg": c["message"], "type": "compatibility"} for c in failing],
    )


def create_adapter(
    session: Session,
    ws: WorkspaceAccess,
    model_ref: str,
    body: dict[str, Any],
    ctx: Context,
    *,
    allow_incompatible: bool = False,
) -> Adapter:
    # 1. The source (Cloudera: location first; NeMo: the fileset before the model).
    local_ref: SourceRef | None = None
    fileset: Fileset | None = None
    fileset_ref = ""
    if body.get("location"):
        local_ref = parse_local_path(body["location"], ctx.settings.allowed_local_roots)
        if not Path(local_ref.path).is_dir():
            raise BadRequest(
                f"Location '{body['location']}' must be a valid directory.", error_code="LOCATION_NOT_A_DIRECTORY"
            )
    if body.get("fileset"):
        fileset, fileset_workspace = resolve_fileset(session, ws, body["fileset"])
        fileset_ref = f"{fileset_workspace}/{fileset.name}"
    # 2. The base model, and the version the adapter binds to.
    model_access = resolve_model(session, ws.principal, model_ref, ws.workspace.name)
    model = model_access.model
    version = _bind_version(session, model_access, body.get("model_version"))
    # 3. Lineage links (Cloudera's messages).
    job = lineage.lookup_optional(session, FineTuningJob, ws, body.get("fine_tuning_job"))
    prompt = lineage.lookup_optional(session, Prompt, ws, body.get("prompt"))
    # 4. The files: not empty, and checked against the base now when they can be read now.
    compatibility: dict[str, Any] = dict(UNKNOWN)
    lora_config = body.get("lora_config")
    digest: str | None = None
    source_type = "model_registry"
    if fileset is not None:
        source_type = "fileset"
        if fileset.file_count == 0:
            raise BadRequest(
                f"Fileset '{fileset_ref}', exists but is empty",
                error_code="FILESET_EMPTY",
                solution_msg="Upload the adapter's files (adapter_config.json and its weights) first",
            )
        fs_workspace, fs_name = fileset_ref.split("/")
        source = FilesetSource(
            ctx.db, ctx.store, SourceRef("fileset", workspace=fs_workspace, fileset=fs_name), fileset_ref
        )
        result = inspection.inspect_adapter(source, version, body["finetuning_type"], lora_config, model.name)
        compatibility, lora_config, digest = result.compatibility, result.lora_config, fileset.digest
    elif local_ref is not None:
        source_type = "location"
        source_local = LocalSource(local_ref, ctx.settings.allowed_local_roots)
        try:
            result = inspection.inspect_adapter(source_local, version, body["finetuning_type"], lora_config, model.name)
        except SourceError as exc:
            raise BadRequest(str(exc), error_code="LOCATION_NOT_A_DIRECTORY") from exc
        if result.file_count == 0:
            raise BadRequest(f"Location '{body['location']}' holds no files", error_code="LOCATION_EMPTY")
        compatibility, lora_config, digest = result.compatibility, result.lora_config, result.digest
    elif body.get("huggingface_name"):
        source_type = "huggingface"
    enabled = bool(body.get("enabled", True))
    if compatibility["status"] == "incompatible":
        if not allow_incompatible:
            raise _incompatible(compatibility)
        enabled = False
    adapter = Adapter(
        workspace_id=ws.workspace.id,
        name=body["name"].strip(),
        description=body.get("description", ""),
        model_id=model.id,
        model_version_id=version.id if version else None,
        finetuning_type=body["finetuning_type"],
        enabled=enabled,
        lora_config=lora_config,
        source_type=source_type,
        fileset=fileset_ref,
        fileset_id=fileset.id if fileset else None,
        location=local_ref.path if local_ref else "",
        huggingface_name=body.get("huggingface_name") or "",
        model_registry=body.get("model_registry"),
        fine_tuning_job_id=job.id if job else None,
        prompt_id=prompt.id if prompt else None,
        compatibility=compatibility,
        digest=digest,
        created_by=ws.principal.name,
        updated_by=ws.principal.name,
    )
    # 5. The name, decided by the database (workspace-wide unique).
    insert_unique(
        session,
        adapter,
        Conflict(
            f"An adapter with the name '{adapter.name}' already exists in workspace '{ws.workspace.name}'.",
            error_code="ADAPTER_ALREADY_EXISTS",
            solution_msg="Pick another name or PATCH the existing adapter",
        ),
    )
    if source_type == "huggingface":
        jobs.enqueue(session, INSPECT_JOB, {"adapter_id": adapter.id}, workspace_id=ws.workspace.id)
    _record(
        session,
        ws,
        "adapter.created",
        adapter,
        {
            "model": model_access.ref,
            "model_version": version.name if version else None,
            "enabled": enabled,
            "finetuning_type": adapter.finetuning_type,
            "compatibility": compatibility["status"],
            **({"allow_incompatible": True} if not enabled and compatibility["status"] == "incompatible" else {}),
        },
    )
    return adapter


def _bind_version(session: Session, access: ModelAccess, name: str | None) -> ModelVersion | None:
    if name is None:
        if access.model.current_version_id is None:
            return None
        return models.get_version_by_id(session, access.model.current_version_id)
    version = models.get_version(session, access.model.id, name)
    if version is None:
        raise NotFound(f"Version '{name}' not found for model '{access.ref}'", error_code="VERSION_NOT_FOUND")
    if version.status != VersionStatus.READY.value:
        raise Conflict(
            f"Version '{name}' of model '{access.ref}' is {version.status}; an adapter binds to a READY version",
            error_code="VERSION_NOT_READY",
        )
    return version


# -- reading and changing --------------------------------------------------------------------------------------------


def list_adapters(
    session: Session, ws: WorkspaceAccess, query: ListQuery, model: Model | None = None
) -> tuple[list[Adapter], Pagination, str | None]:
    filters = dict(query.filters)
    if model is not None:
        filters["model_id"] = model.id
    elif "model" in filters:
        filters["model_id"] = resolve_model(session, ws.principal, filters.pop("model"), ws.workspace.name).model.id
    if "fileset" in filters:
        found = repository.fileset_by_ref(session, *split_ref(filters.pop("fileset"), ws.workspace.name, "fileset"))
        filters["fileset_id"] = found[0].id if found else "-"
    return paginate(
        session,
        repository.adapters_query(ws.workspace.id, filters),
        query,
        columns={"created_at": Adapter.created_at, "updated_at": Adapter.updated_at, "name": Adapter.name},
        tiebreak=Adapter.id,
    )


def update_adapter(
    session: Session,
    ws: WorkspaceAccess,
    name: str,
    changes: dict[str, Any],
    ctx: Context,
    if_match: str | None,
    model: Model | None = None,
) -> Adapter:
    adapter = get_adapter(session, ws, name, model)
    check_if_match(if_match, adapter)
    applied: dict[str, Any] = {}
    if "fileset" in changes:
        if adapter.source_type != "fileset":
            raise BadRequest(
                "Only an adapter registered from a fileset can be repointed to another fileset",
                error_code="NOT_A_FILESET_ADAPTER",
            )
        fileset, fs_workspace = resolve_fileset(session, ws, changes["fileset"])
        ref = f"{fs_workspace}/{fileset.name}"
        if fileset.id != adapter.fileset_id:
            if fileset.file_count == 0:
                raise BadRequest(f"Fileset '{ref}', exists but is empty", error_code="FILESET_EMPTY")
            version = models.get_version_by_id(session, adapter.model_version_id) if adapter.model_version_id else None
            base = models.get_model_by_id(session, adapter.model_id)
            source = FilesetSource(
                ctx.db, ctx.store, SourceRef("fileset", workspace=fs_workspace, fileset=fileset.name), ref
            )
            result = inspection.inspect_adapter(
                source,
                version,
                adapter.finetuning_type,
                adapter.lora_config,
                base.name if base else None,
                keep_lora_config=True,
            )
            if result.compatibility["status"] == "incompatible":
                raise _incompatible(result.compatibility)
            adapter.fileset, adapter.fileset_id, adapter.digest = ref, fileset.id, fileset.digest
            adapter.compatibility = result.compatibility
            applied["fileset"] = ref
    reenable = changes.get("enabled") and not adapter.enabled
    if reenable and adapter.compatibility.get("status") == "incompatible":
        raise Conflict(
            f"Adapter '{name}' failed its compatibility check and cannot be enabled",
            error_code="ADAPTER_INCOMPATIBLE",
            solution_msg="Repoint it to compatible files (PATCH fileset) first",
        )
    for key in ("description", "enabled"):
        if key in changes and getattr(adapter, key) != changes[key]:
            setattr(adapter, key, changes[key])
            applied[key] = changes[key]
    if "fine_tuning_job" in changes:
        job = lineage.get(session, FineTuningJob, ws, changes["fine_tuning_job"])
        if job.id != adapter.fine_tuning_job_id:
            adapter.fine_tuning_job_id = job.id
            applied["fine_tuning_job"] = job.name
    if "prompt" in changes:
        prompt = lineage.get(session, Prompt, ws, changes["prompt"])
        if prompt.id != adapter.prompt_id:
            adapter.prompt_id = prompt.id
            applied["prompt"] = prompt.name
    if applied:
        adapter.updated_by = ws.principal.name
        session.flush()
        action = "adapter.updated"
        if set(applied) == {"enabled"}:
            action = "adapter.enabled" if applied["enabled"] else "adapter.disabled"
        _record(session, ws, action, adapter, applied)
    return adapter


def delete_adapter(
    session: Session, ws: WorkspaceAccess, name: str, if_match: str | None, model: Model | None = None
) -> None:
    adapter = get_adapter(session, ws, name, model)
    check_if_match(if_match, adapter)
    session.delete(adapter)
    _record(session, ws, "adapter.deleted", adapter, {})


def dataset_split(session: Session, ws: WorkspaceAccess, name: str) -> tuple[float, float, str | None]:
    """Cloudera's GetDatasetSplitByAdapter: the linked job's fraction and split, else the defaults 1.0 and 0.9."""
    adapter = get_adapter(session, ws, name)
    job = session.get(FineTuningJob, adapter.fine_tuning_job_id) if adapter.fine_tuning_job_id else None
    if job is None:
        return 1.0, 0.9, None
    return job.dataset_fraction, job.train_test_split, job.name


def lineage_graph(session: Session, ws: WorkspaceAccess, name: str) -> dict[str, Any]:
    """dataset -> prompt -> fine-tuning job -> adapter -> base model version (-> model)."""
    from modelyard.lineage.tables import Dataset

    adapter = get_adapter(session, ws, name)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []

    def node(kind: str, obj: Any, workspace: str | None) -> str:
        key = f"{kind}:{obj.id}"
        nodes.setdefault(key, {"kind": kind, "name": obj.name, "id": obj.id, "workspace": workspace})
        return key

    me = node("adapter", adapter, ws.workspace.name)
    job = session.get(FineTuningJob, adapter.fine_tuning_job_id) if adapter.fine_tuning_job_id else None
    prompt = session.get(Prompt, adapter.prompt_id) if adapter.prompt_id else None
    if prompt is None and job is not None and job.prompt_id:
        prompt = session.get(Prompt, job.prompt_id)
    dataset_id = (job.dataset_id if job is not None else None) or (prompt.dataset_id if prompt is not None else None)
    dataset = session.get(Dataset, dataset_id) if dataset_id else None
    version = models.get_version_by_id(session, adapter.model_version_id) if adapter.model_version_id else None
    model = models.get_model_by_id(session, adapter.model_id)
    model_workspace = models.workspace_name(session, model.workspace_id) if model else None
    if job is not None:
        edges.append({"source": node("fine_tuning_job", job, ws.workspace.name), "target": me, "relation": "produced"})
    if prompt is not None:
        target = f"fine_tuning_job:{job.id}" if job is not None else me
        edges.append({"source": node("prompt", prompt, ws.workspace.name), "target": target, "relation": "formatted"})
    if dataset is not None:
        target = f"prompt:{prompt.id}" if prompt is not None else (f"fine_tuning_job:{job.id}" if job else me)
        edges.append({"source": node("dataset", dataset, ws.workspace.name), "target": target, "relation": "fed"})
    if version is not None:
        edges.append({"source": me, "target": node("model_version", version, model_workspace), "relation": "adapts"})
    if model is not None:
        model_key = node("model", model, model_workspace)
        edges.append(
            {
                "source": f"model_version:{version.id}" if version else me,
                "target": model_key,
                "relation": "version_of" if version else "adapts",
            }
        )
    return {"nodes": list(nodes.values()), "edges": edges}


# -- the worker's side -----------------------------------------------------------------------------------------------


def finish_inspection(
    session: Session,
    adapter_id: str,
    compatibility: dict[str, Any],
    lora_config: dict[str, Any] | None,
    digest: str | None,
    pinned: dict[str, Any],
) -> bool:
    adapter = session.get(Adapter, adapter_id)
    if adapter is None:
        return False
    adapter.compatibility = compatibility
    adapter.digest = digest
    adapter.source_pinned = pinned
    if lora_config is not None:
        adapter.lora_config = lora_config
    changes: dict[str, Any] = {"compatibility": compatibility["status"], "digest": digest}
    if compatibility["status"] == "incompatible" and adapter.enabled:
        adapter.enabled = False
        changes["enabled"] = False
    session.flush()
    workspace = models.workspace_name(session, adapter.workspace_id)
    action = "adapter.disabled" if changes.get("enabled") is False else "adapter.inspected"
    events.record(
        session,
        actor="system",
        action=action,
        kind="adapter",
        name=adapter.name,
        resource_id=adapter.id,
        workspace_id=adapter.workspace_id,
        workspace=workspace,
        changes=changes,
    )
    return True


def digest_of(manifest: list[tuple[str, int, str]]) -> str:
    return hashlib.sha256("".join(f"{p}\t{s}\t{h}\n" for p, s, h in sorted(manifest)).encode()).hexdigest()
