"""HTTP routes of models, model versions and base model types."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from modelyard.auth import CurrentPrincipal, Principal, current_principal
from modelyard.db.base import row_copy
from modelyard.kit.answer_cache import NOT_MODIFIED
from modelyard.kit.etag import etag_for, etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, NoFilters, Page, Pagination, list_params, plain_list_query
from modelyard.kit.responses import JSONBytes, json_bytes
from modelyard.kit.routing import (
    DbSession,
    api_router,
    cached_answer,
    fast_path,
    inline_write,
    json_body,
    path_params,
    request_session,
    run_db,
    run_prebuilt,
)
from modelyard.kit.schemas import read_model
from modelyard.model import repository, service
from modelyard.model.schemas import (
    BaseModelTypeRead,
    ManifestEntry,
    ModelCreate,
    ModelFilters,
    ModelRead,
    ModelReplace,
    ModelReplaced,
    ModelUpdate,
    VersionConfig,
    VersionCreate,
    VersionFilters,
    VersionRead,
    VersionUpdate,
)
from modelyard.model.service import ModelAccess
from modelyard.model.tables import Model, ModelVersion
from modelyard.model_template import service as templates
from modelyard.model_template.schemas import (
    Coercion,
    LaunchConfigRead,
    ParameterBindings,
    ValidatedRequest,
    ValidateRequest,
)
from modelyard.workspace.dependencies import WorkspaceEditor, WorkspaceName, WorkspaceReader, access_at
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

router = api_router("/v1", tags=["models"])
MODELS = "/workspaces/{ws}/models"

ModelName = Annotated[str, Path(description="Model name", max_length=255)]
VersionNameParam = Annotated[str, Path(description="Version name", max_length=64)]


async def _model_reader(
    ws: WorkspaceName, model: ModelName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> ModelAccess:
    return await run_db(request, service.model_access, session, principal, ws, model, Role.VIEWER)


async def _model_editor(
    ws: WorkspaceName, model: ModelName, principal: CurrentPrincipal, session: DbSession, request: Request
) -> ModelAccess:
    return await run_db(request, service.model_access, session, principal, ws, model, Role.EDITOR)


# The check of an editor who adds rows under a model (a version) and changes nothing of it: a prebuilt read on the
# event loop, outside the request's session, as for workspace editors, so the write transaction (and on SQLite the
# write lock) starts at the first change. (A version's create through the session is not an inline write: with the
# in-process worker validating the versions beside it, the worker's thread and the event loop fought over the GIL,
# and the API answered half as many creates at twice the p99. Its fast path is a group commit's member, a few
# inserts without the session; bench/RESULTS.md.)
async def _model_adder(ws: WorkspaceName, model: ModelName, request: Request) -> ModelAccess:
    principal = await current_principal(request)
    return await run_prebuilt(
        request, service.read_model_access, service.read_model_access_async, principal, ws, model, Role.EDITOR
    )


ModelReader = Annotated[ModelAccess, Depends(_model_reader)]
ModelEditor = Annotated[ModelAccess, Depends(_model_editor)]
ModelAdder = Annotated[ModelAccess, Depends(_model_adder)]


def _roots(request: Request) -> list:  # type: ignore[type-arg]
    return list(request.app.state.ctx.settings.allowed_local_roots)


def model_read(session: Session, model: Model, workspace: str) -> ModelRead:
    return ModelRead.model_validate(service.model_answers(session, [repository.columns_of(model)], workspace)[0])


def version_read(version: ModelVersion, access: ModelAccess) -> VersionRead:
    return _version_read(version, access.ref, access.model.current_version_id)


def _version_read(version: ModelVersion, model_ref: str, current_version_id: str | None) -> VersionRead:
    config = VersionConfig.model_validate(
        {
            "llm_model_config": {
                "base_model_type": version.base_model_type,
                "model_path": version.model_path,
                "local_model_path": version.local_model_path,
            }
        }
    )
    return read_model(VersionRead, version, model=model_ref, config=config, is_current=current_version_id == version.id)


# -- models ---------------------------------------------------------------------------------------------------------


async def _create_model_fast(request: Request) -> JSONBytes | None:
    """A model without a template or a first version: its row, labels and event without the session (one statement
    on PostgreSQL, an inline transaction on SQLite). None, with nothing done, for any other."""
    names = path_params(request, "ws")
    body = json_body(request, ModelCreate)
    if names is None or body is None or body.version is not None:
        return None
    access = await access_at(request, names[0], Role.EDITOR)
    fields = body.model_dump(exclude={"version"}, mode="json")
    row = await service.create_model_without_session(request.app.state.ctx.db, access, fields)
    return None if row is None else _created(row, service.new_model_answer(row, access.workspace.name))


@router.post(MODELS, status_code=status.HTTP_201_CREATED, response_model=ModelReplaced)
@fast_path(_create_model_fast)
@inline_write
def create_model(body: ModelCreate, access: WorkspaceEditor, session: DbSession, request: Request) -> JSONBytes:
    fields = body.model_dump(exclude={"version"}, mode="json")
    version = body.version.model_dump(mode="json") if body.version else None
    row, new_version, coercions = service.create_model(session, access, fields, version, _roots(request))
    session.flush()
    return _created(row, _replaced(session, access, row, new_version, coercions, created=True))


def _created(model: dict[str, Any], answer: dict[str, Any]) -> JSONBytes:
    return JSONBytes(
        answer, status_code=status.HTTP_201_CREATED, headers={"ETag": etag_for(model["id"], model["version"])}
    )


def _replaced(
    session: Session,
    access: WorkspaceAccess,
    model: dict[str, Any],
    new_version: ModelVersion | None,
    coercions: list[dict[str, Any]],
    *,
    created: bool,
) -> dict[str, Any]:
    """ModelReplaced's answer (after a create or a PUT) from the model's row, built as GET builds a model's (one
    answer builder), without validating it into ModelReplaced and serialising it back."""
    workspace = access.workspace.name
    answer = service.model_answers(session, [model], workspace, created=created)[0]
    new = None
    if new_version is not None:
        new = _version_read(new_version, f"{workspace}/{model['name']}", model["current_version_id"])
    answer["new_version"] = new.model_dump(mode="json", by_alias=True) if new else None
    answer["coercions"] = [Coercion(**c).model_dump(mode="json", by_alias=True) for c in coercions]
    return answer


def _model_page(session: Session, access: WorkspaceAccess, query: ListQuery) -> bytes:
    answers, pagination, token = service.list_models(session, access, query)
    return json_bytes({"data": answers, "pagination": pagination.model_dump(), "next_page_token": token})


# GET of a model and the list are what pipelines and serving fleets poll: they run on the event loop without a
# thread hand-off (kit.routing.cached_answer, run_prebuilt): on SQLite all of them; on PostgreSQL GET and a kept page.
# Their plain requests take a fast path (kit.routing.fast_path), past FastAPI's own handling.
_MODEL_QUERY = list_params(ModelFilters)


async def _list_models_fast(request: Request) -> Response | None:
    names = path_params(request, "ws")
    query = plain_list_query(request, _MODEL_QUERY)
    if names is None or query is None:
        return None
    access = await access_at(request, names[0], Role.VIEWER)
    return await _models_page(request, access, request_session(request), query)


@router.get(MODELS, response_model=Page[ModelRead], responses=NOT_MODIFIED)
@fast_path(_list_models_fast)
async def list_models(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(_MODEL_QUERY)],
    request: Request,
) -> Response:
    return await _models_page(request, access, session, query)


async def _models_page(request: Request, access: WorkspaceAccess, session: Session, query: ListQuery) -> Response:
    # A page depends on the workspace and the query only (every reader of a workspace sees all of its models), so
    # one kept answer serves every poller until a commit anywhere changes the database.
    key = ("models", access.workspace.id, query.key())
    return await cached_answer(request, key, session, functools.partial(_model_page, session, access, query))


async def _get_model_fast(request: Request) -> JSONBytes | None:
    names = path_params(request, "ws", "model")
    if names is None:
        return None
    principal = await current_principal(request)
    return await _model_answer(request, principal, *names)


@router.get(MODELS + "/{model}", response_model=ModelRead)
@fast_path(_get_model_fast)
async def get_model(ws: WorkspaceName, model: ModelName, principal: CurrentPrincipal, request: Request) -> JSONBytes:
    return await _model_answer(request, principal, ws, model)


async def _model_answer(request: Request, principal: Principal, ws: str, model: str) -> JSONBytes:
    answer, etag = await run_prebuilt(request, service.read_model, service.read_model_async, principal, ws, model)
    return JSONBytes(answer, headers={"ETag": etag})


@router.patch(MODELS + "/{model}")
def update_model(
    body: ModelUpdate, access: ModelEditor, session: DbSession, response: Response, if_match: IfMatch = None
) -> ModelRead:
    model = service.update_model(session, access, body.model_dump(exclude_unset=True, mode="json"), if_match)
    response.headers["ETag"] = etag_of(model)
    return model_read(session, model, access.ws.workspace.name)


@router.put(MODELS + "/{model}", response_model=ModelReplaced)
def replace_model(
    body: ModelReplace,
    access: ModelEditor,
    session: DbSession,
    request: Request,
    if_match: IfMatch = None,
) -> JSONBytes:
    """Huawei's UpdateModelDefinition: `name`, `description`, `current_version_id` (a READY version of this
    model) and/or `version`, which creates a new version asynchronously (answered in `new_version`)."""
    model, new_version = service.replace_model(
        session, access, body.model_dump(exclude_unset=True, mode="json"), if_match, _roots(request)
    )
    session.flush()
    answer = _replaced(session, access.ws, repository.columns_of(model), new_version, [], created=False)
    return JSONBytes(answer, headers={"ETag": etag_of(model)})


@router.delete(MODELS + "/{model}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(
    access: ModelEditor,
    session: DbSession,
    cascade: Annotated[bool, Query(description="Also delete the adapters that refer to it")] = False,
    if_match: IfMatch = None,
) -> None:
    service.delete_model(session, access, cascade, if_match)


# -- made from a template (SGP) ----------------------------------------------------------------------------------------


@router.post(MODELS + "/{model}/validate-request", tags=["model templates"])
def validate_model_request(body: ValidateRequest, access: ModelReader, session: DbSession) -> ValidatedRequest:
    """Check `model_request_parameters` against the template's request schema: 200 with the normalised bindings
    and what was coerced, or 422 listing every offending parameter."""
    given = body.model_request_parameters.bindings if body.model_request_parameters else None
    bindings, coercions = templates.validate_request(session, access, given)
    return ValidatedRequest(
        model_request_parameters=ParameterBindings(bindings=bindings), coercions=[Coercion(**c) for c in coercions]
    )


@router.get(MODELS + "/{model}/request-schema", tags=["model templates"])
def get_model_request_schema(access: ModelReader, session: DbSession) -> dict[str, Any]:
    """The JSON Schema of a full request to the model, for its type; `model_request_parameters` is required when
    its template declares request parameters."""
    return templates.request_schema(session, access)


@router.get(MODELS + "/{model}/launch-config", tags=["model templates"])
def get_model_launch_config(access: ModelReader, session: DbSession) -> LaunchConfigRead:
    """The template's launch configuration with the model's creation parameters injected."""
    return LaunchConfigRead.model_validate(templates.launch_config(session, access))


# -- versions -------------------------------------------------------------------------------------------------------


async def _create_version_fast(request: Request) -> JSONBytes | None:
    """A version of a fileset: its row, job and event without the session, with the other versions that came with
    it (an inline write on SQLite, two statements on PostgreSQL). None, with nothing done, for any other (see
    service.create_version_without_session)."""
    names = path_params(request, "ws", "model")
    body = json_body(request, VersionCreate)
    if names is None or body is None or not body.config.llm_model_config.model_path:
        return None
    access = await _model_adder(names[0], names[1], request)
    row = await service.create_version_without_session(request.app.state.ctx.db, access, body.model_dump(mode="json"))
    if row is None:
        return None
    version = row_copy(ModelVersion, row)
    answer = version_read(version, access).model_dump(mode="json", by_alias=True)
    return JSONBytes(answer, status_code=status.HTTP_201_CREATED, headers={"ETag": etag_of(version)})


@router.post(MODELS + "/{model}/versions", status_code=status.HTTP_201_CREATED, tags=["model versions"])
@fast_path(_create_version_fast)
def create_version(
    body: VersionCreate, access: ModelAdder, session: DbSession, request: Request, response: Response
) -> VersionRead:
    """Add a version (status CREATING); a worker checks its files and sets READY or FAILED."""
    version = service.create_version(session, access, body.model_dump(mode="json"), _roots(request))
    session.flush()
    response.headers["ETag"] = etag_of(version)
    return version_read(version, access)


@router.get(MODELS + "/{model}/versions", tags=["model versions"])
def list_versions(
    access: ModelReader, session: DbSession, query: Annotated[ListQuery, Depends(list_params(VersionFilters))]
) -> Page[VersionRead]:
    rows, pagination, token = service.list_versions(session, access, query)
    return Page(data=[version_read(v, access) for v in rows], pagination=pagination, next_page_token=token)


@router.get(MODELS + "/{model}/versions/{version}", tags=["model versions"])
def get_version(version: VersionNameParam, access: ModelReader, session: DbSession, response: Response) -> VersionRead:
    found = service.get_version(session, access, version)
    response.headers["ETag"] = etag_of(found)
    return version_read(found, access)


@router.get(MODELS + "/{model}/versions/{version}/files", tags=["model versions"])
def list_version_files(
    version: VersionNameParam,
    access: ModelReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(NoFilters, sorts=("path",), default_sort="path"))],
) -> Page[ManifestEntry]:
    """The manifest of a READY version: path, size and sha256 of every file."""
    rows, pagination, token = service.list_manifest(session, access, version, query)
    return Page(data=[ManifestEntry.model_validate(f) for f in rows], pagination=pagination, next_page_token=token)


@router.patch(MODELS + "/{model}/versions/{version}", tags=["model versions"])
def update_version(
    version: VersionNameParam,
    body: VersionUpdate,
    access: ModelEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> VersionRead:
    found = service.update_version(session, access, version, body.model_dump(exclude_unset=True), if_match)
    response.headers["ETag"] = etag_of(found)
    return version_read(found, access)


@router.delete(MODELS + "/{model}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT, tags=["model versions"])
def delete_version(
    version: VersionNameParam, access: ModelEditor, session: DbSession, if_match: IfMatch = None
) -> None:
    service.delete_version(session, access, version, if_match)


@router.get("/base-model-types", tags=["models"])
def list_base_model_types(principal: CurrentPrincipal, session: DbSession) -> Page[BaseModelTypeRead]:
    """Huawei's ListBaseModels: the base model types of the versions you can see, with what their configs said.
    One page holds them all (there are few types), in the list envelope every list uses."""
    rows = repository.base_model_types(session, None if principal.is_admin else principal.user_id)
    data = [BaseModelTypeRead.model_validate(row) for row in rows]
    pagination = Pagination(
        page=1,
        page_size=max(len(data), 1),
        current_page_size=len(data),
        total_pages=1 if data else 0,
        total_results=len(data),
    )
    return Page(data=data, pagination=pagination, next_page_token=None)
