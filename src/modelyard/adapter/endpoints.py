"""HTTP routes of adapters: NeMo's nested routes under a model and the top-level ones, plus dataset split and
lineage."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from modelyard.adapter import repository, service
from modelyard.adapter.schemas import (
    AdapterCreate,
    AdapterCreateWithModel,
    AdapterFilters,
    AdapterRead,
    AdapterUpdate,
    DatasetSplit,
    LineageGraph,
)
from modelyard.adapter.tables import Adapter
from modelyard.kit.answer_cache import NOT_MODIFIED
from modelyard.kit.etag import etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params, plain_list_query
from modelyard.kit.routing import (
    DbSession,
    api_router,
    cached_answer,
    fast_path,
    path_params,
    request_session,
    run_prebuilt,
)
from modelyard.kit.schemas import read_model
from modelyard.model.endpoints import ModelName
from modelyard.model.service import ModelAccess, model_access
from modelyard.workspace.dependencies import WorkspaceEditor, WorkspaceReader, access_at
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

router = api_router("/v1/workspaces/{ws}", tags=["adapters"])

AllowIncompatible = Annotated[bool, Query(description="Store an incompatible adapter, disabled, instead of refusing")]
_ADAPTER_QUERY = list_params(AdapterFilters)
Filters = Annotated[ListQuery, Depends(_ADAPTER_QUERY)]


def adapters_read(session: Session, adapters: list[Adapter]) -> list[AdapterRead]:
    refs = repository.refs_of(session, adapters)
    return [adapter_read(adapter, refs[adapter.id]) for adapter in adapters]


def adapter_read(adapter: Adapter, ref: dict[str, str | None]) -> AdapterRead:
    """An adapter's answer from its row and the names of what it refers to (repository.refs_of)."""
    source = {"type": adapter.source_type, **({"pinned": adapter.source_pinned} if adapter.source_pinned else {})}
    return read_model(
        AdapterRead,
        adapter,
        workspace=ref["workspace"],
        model=ref["model"],
        model_version=ref["model_version"],
        fine_tuning_job=ref["fine_tuning_job"],
        prompt=ref["prompt"],
        source=source,
        fileset=adapter.fileset or None,
        location=adapter.location or None,
        huggingface_name=adapter.huggingface_name or None,
    )


def _ctx(request: Request) -> service.Context:
    app = request.app.state.ctx
    return service.Context(settings=app.settings, store=app.store, db=app.db)


def _nested_model(session: Session, access: WorkspaceAccess, model: str) -> ModelAccess:
    return model_access(session, access.principal, access.workspace.name, model, Role.VIEWER)


# -- top level -------------------------------------------------------------------------------------------------------


@router.post("/adapters", status_code=status.HTTP_201_CREATED)
def create_adapter(
    body: AdapterCreateWithModel,
    access: WorkspaceEditor,
    session: DbSession,
    request: Request,
    response: Response,
    allow_incompatible: AllowIncompatible = False,
) -> AdapterRead:
    """Register an adapter on a base model (`model`: 'name' or 'workspace/name')."""
    adapter = service.create_adapter(
        session,
        access,
        body.model,
        body.model_dump(exclude={"model"}, mode="json"),
        _ctx(request),
        allow_incompatible=allow_incompatible,
    )
    session.flush()
    response.headers["ETag"] = etag_of(adapter)
    return adapters_read(session, [adapter])[0]


def _adapter_page(session: Session, access: WorkspaceAccess, query: ListQuery, model: str | None) -> bytes:
    base = _nested_model(session, access, model).model if model is not None else None
    rows, pagination, token = service.list_adapters(session, access, query, model=base)
    page = Page[AdapterRead](data=adapters_read(session, rows), pagination=pagination, next_page_token=token)
    return page.model_dump_json().encode()


async def _adapters(
    request: Request, session: Session, access: WorkspaceAccess, query: ListQuery, model: str | None
) -> Response:
    # What serving fleets poll (the enabled adapters of a base model). Kept per caller: a base model named in
    # another workspace resolves (or not) by the caller's memberships.
    key = ("adapters", access.principal.user_id, access.workspace.id, model, query.key())
    return await cached_answer(request, key, session, functools.partial(_adapter_page, session, access, query, model))


# The reads a serving fleet polls run on the event loop (kit.routing.cached_answer, run_prebuilt), without a thread
# hand-off: on SQLite all of them; on PostgreSQL a kept page and GET of an adapter.
async def _adapters_fast(request: Request, nested: bool) -> Response | None:
    """A page of adapters (the workspace's, or with `nested` those of the model in the path) for a plain query
    string: what serving fleets poll, past FastAPI's own handling (kit.routing.fast_path)."""
    given = path_params(request, "ws", "model") if nested else path_params(request, "ws")
    query = plain_list_query(request, _ADAPTER_QUERY)
    if given is None or query is None:
        return None
    access = await access_at(request, given[0], Role.VIEWER)
    return await _adapters(request, request_session(request), access, query, given[1] if nested else None)


async def _list_adapters_fast(request: Request) -> Response | None:
    return await _adapters_fast(request, nested=False)


async def _list_model_adapters_fast(request: Request) -> Response | None:
    return await _adapters_fast(request, nested=True)


@router.get("/adapters", response_model=Page[AdapterRead], responses=NOT_MODIFIED)
@fast_path(_list_adapters_fast)
async def list_adapters(access: WorkspaceReader, session: DbSession, query: Filters, request: Request) -> Response:
    return await _adapters(request, session, access, query, None)


@router.get("/adapters/{adapter}")
async def get_adapter(adapter: str, access: WorkspaceReader, request: Request, response: Response) -> AdapterRead:
    found, refs = await run_prebuilt(request, service.read_adapter, service.read_adapter_async, access, adapter)
    response.headers["ETag"] = etag_of(found)
    return adapter_read(found, refs)


@router.patch("/adapters/{adapter}")
def update_adapter(
    adapter: str,
    body: AdapterUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> AdapterRead:
    found = service.update_adapter(
        session, access, adapter, body.model_dump(exclude_unset=True), _ctx(request), if_match
    )
    response.headers["ETag"] = etag_of(found)
    return adapters_read(session, [found])[0]


@router.delete("/adapters/{adapter}", status_code=status.HTTP_204_NO_CONTENT)
def delete_adapter(adapter: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete_adapter(session, access, adapter, if_match)


@router.get("/adapters/{adapter}/dataset-split")
def get_dataset_split(adapter: str, access: WorkspaceReader, session: DbSession) -> DatasetSplit:
    """The fraction of the dataset and the train/test split the adapter was trained with (defaults 1.0 / 0.9)."""
    fraction, split, job = service.dataset_split(session, access, adapter)
    return DatasetSplit(dataset_fraction=fraction, train_test_split=split, fine_tuning_job=job)


@router.get("/adapters/{adapter}/lineage")
def get_lineage(adapter: str, access: WorkspaceReader, session: DbSession) -> LineageGraph:
    """dataset -> prompt -> fine-tuning job -> adapter -> base model version -> model."""
    return LineageGraph.model_validate(service.lineage_graph(session, access, adapter))


# -- nested under a model (NeMo's "Add Model Adapter") -----------------------------------------------------------------


@router.post("/models/{model}/adapters", status_code=status.HTTP_201_CREATED)
def create_model_adapter(
    model: ModelName,
    body: AdapterCreate,
    access: WorkspaceEditor,
    session: DbSession,
    request: Request,
    response: Response,
    allow_incompatible: AllowIncompatible = False,
) -> AdapterRead:
    adapter = service.create_adapter(
        session, access, model, body.model_dump(mode="json"), _ctx(request), allow_incompatible=allow_incompatible
    )
    session.flush()
    response.headers["ETag"] = etag_of(adapter)
    return adapters_read(session, [adapter])[0]


@router.get("/models/{model}/adapters", response_model=Page[AdapterRead], responses=NOT_MODIFIED)
@fast_path(_list_model_adapters_fast)
async def list_model_adapters(
    model: ModelName, access: WorkspaceReader, session: DbSession, query: Filters, request: Request
) -> Response:
    return await _adapters(request, session, access, query, model)


@router.get("/models/{model}/adapters/{adapter}")
async def get_model_adapter(
    model: ModelName, adapter: str, access: WorkspaceReader, request: Request, response: Response
) -> AdapterRead:
    found, refs = await run_prebuilt(
        request, service.read_model_adapter, service.read_model_adapter_async, access, model, adapter
    )
    response.headers["ETag"] = etag_of(found)
    return adapter_read(found, refs)


@router.patch("/models/{model}/adapters/{adapter}")
def update_model_adapter(
    model: ModelName,
    adapter: str,
    body: AdapterUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> AdapterRead:
    found = service.update_adapter(
        session,
        access,
        adapter,
        body.model_dump(exclude_unset=True),
        _ctx(request),
        if_match,
        _nested_model(session, access, model).model,
    )
    response.headers["ETag"] = etag_of(found)
    return adapters_read(session, [found])[0]


@router.delete("/models/{model}/adapters/{adapter}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model_adapter(
    model: ModelName, adapter: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None
) -> None:
    service.delete_adapter(session, access, adapter, if_match, _nested_model(session, access, model).model)
