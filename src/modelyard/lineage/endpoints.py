"""HTTP routes of datasets, prompts and fine-tuning jobs."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Response, status
from sqlalchemy.orm import Session

from modelyard.kit.etag import etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, api_router
from modelyard.kit.schemas import read_model
from modelyard.lineage import service
from modelyard.lineage.schemas import (
    DatasetCreate,
    DatasetRead,
    DatasetUpdate,
    JobCreate,
    JobFilters,
    JobRead,
    JobUpdate,
    LineageFilters,
    PromptCreate,
    PromptRead,
    PromptUpdate,
)
from modelyard.lineage.tables import Dataset, FineTuningJob, Prompt
from modelyard.model.tables import Model, ModelVersion
from modelyard.workspace.dependencies import WorkspaceEditor, WorkspaceReader
from modelyard.workspace.tables import Workspace

router = api_router("/v1/workspaces/{ws}", tags=["lineage"])


def names(session: Session, column: Any, id_column: Any, ids: set[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {i: n for i, n in session.execute(sa.select(id_column, column).where(id_column.in_(wanted)))}


def _datasets(rows: list[Dataset], workspace: str) -> list[DatasetRead]:
    return [read_model(DatasetRead, r, workspace=workspace) for r in rows]


def _prompts(session: Session, rows: list[Prompt], workspace: str) -> list[PromptRead]:
    datasets = names(session, Dataset.name, Dataset.id, {r.dataset_id for r in rows})
    return [read_model(PromptRead, r, workspace=workspace, dataset=datasets.get(r.dataset_id or "")) for r in rows]


def _jobs(session: Session, rows: list[FineTuningJob], workspace: str) -> list[JobRead]:
    model_rows = session.execute(
        sa.select(Model.id, Model.name, Workspace.name)
        .join(Workspace, Workspace.id == Model.workspace_id)
        .where(Model.id.in_({r.base_model_id for r in rows if r.base_model_id}))
    )
    models = {mid: f"{ws}/{name}" for mid, name, ws in model_rows}
    versions = names(session, ModelVersion.name, ModelVersion.id, {r.base_model_version_id for r in rows})
    datasets = names(session, Dataset.name, Dataset.id, {r.dataset_id for r in rows})
    prompts = names(session, Prompt.name, Prompt.id, {r.prompt_id for r in rows})
    return [
        read_model(
            JobRead,
            r,
            workspace=workspace,
            base_model=models.get(r.base_model_id or ""),
            base_model_version=versions.get(r.base_model_version_id or ""),
            dataset=datasets.get(r.dataset_id or ""),
            prompt=prompts.get(r.prompt_id or ""),
        )
        for r in rows
    ]


ListParams = Annotated[ListQuery, Depends(list_params(LineageFilters))]


# -- datasets -------------------------------------------------------------------------------------------------------


@router.post("/datasets", status_code=status.HTTP_201_CREATED)
def create_dataset(body: DatasetCreate, access: WorkspaceEditor, session: DbSession) -> DatasetRead:
    obj = service.create_dataset(session, access, body.model_dump(mode="json"))
    session.flush()
    return _datasets([obj], access.workspace.name)[0]


@router.get("/datasets")
def list_datasets(access: WorkspaceReader, session: DbSession, query: ListParams) -> Page[DatasetRead]:
    rows, pagination, token = service.listing(session, Dataset, access, query)
    return Page(data=_datasets(rows, access.workspace.name), pagination=pagination, next_page_token=token)


@router.get("/datasets/{name}")
def get_dataset(name: str, access: WorkspaceReader, session: DbSession, response: Response) -> DatasetRead:
    obj = service.get(session, Dataset, access, name)
    response.headers["ETag"] = etag_of(obj)
    return _datasets([obj], access.workspace.name)[0]


@router.patch("/datasets/{name}")
def update_dataset(
    name: str,
    body: DatasetUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> DatasetRead:
    obj = service.update(session, Dataset, access, name, body.model_dump(exclude_unset=True), if_match)
    response.headers["ETag"] = etag_of(obj)
    return _datasets([obj], access.workspace.name)[0]


@router.delete("/datasets/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(name: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete(session, Dataset, access, name, if_match)


# -- prompts --------------------------------------------------------------------------------------------------------


@router.post("/prompts", status_code=status.HTTP_201_CREATED)
def create_prompt(body: PromptCreate, access: WorkspaceEditor, session: DbSession) -> PromptRead:
    obj = service.create_prompt(session, access, body.model_dump())
    session.flush()
    return _prompts(session, [obj], access.workspace.name)[0]


@router.get("/prompts")
def list_prompts(access: WorkspaceReader, session: DbSession, query: ListParams) -> Page[PromptRead]:
    rows, pagination, token = service.listing(session, Prompt, access, query)
    return Page(data=_prompts(session, rows, access.workspace.name), pagination=pagination, next_page_token=token)


@router.get("/prompts/{name}")
def get_prompt(name: str, access: WorkspaceReader, session: DbSession, response: Response) -> PromptRead:
    obj = service.get(session, Prompt, access, name)
    response.headers["ETag"] = etag_of(obj)
    return _prompts(session, [obj], access.workspace.name)[0]


@router.patch("/prompts/{name}")
def update_prompt(
    name: str,
    body: PromptUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> PromptRead:
    obj = service.update(session, Prompt, access, name, body.model_dump(exclude_unset=True), if_match)
    response.headers["ETag"] = etag_of(obj)
    return _prompts(session, [obj], access.workspace.name)[0]


@router.delete("/prompts/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_prompt(name: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete(session, Prompt, access, name, if_match)


# -- fine-tuning jobs -----------------------------------------------------------------------------------------------


@router.post("/fine-tuning-jobs", status_code=status.HTTP_201_CREATED)
def create_fine_tuning_job(body: JobCreate, access: WorkspaceEditor, session: DbSession) -> JobRead:
    obj = service.create_job(session, access, body.model_dump())
    session.flush()
    return _jobs(session, [obj], access.workspace.name)[0]


@router.get("/fine-tuning-jobs")
def list_fine_tuning_jobs(
    access: WorkspaceReader, session: DbSession, query: Annotated[ListQuery, Depends(list_params(JobFilters))]
) -> Page[JobRead]:
    rows, pagination, token = service.listing(session, FineTuningJob, access, query)
    return Page(data=_jobs(session, rows, access.workspace.name), pagination=pagination, next_page_token=token)


@router.get("/fine-tuning-jobs/{name}")
def get_fine_tuning_job(name: str, access: WorkspaceReader, session: DbSession, response: Response) -> JobRead:
    obj = service.get(session, FineTuningJob, access, name)
    response.headers["ETag"] = etag_of(obj)
    return _jobs(session, [obj], access.workspace.name)[0]


@router.patch("/fine-tuning-jobs/{name}")
def update_fine_tuning_job(
    name: str,
    body: JobUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> JobRead:
    obj = service.update(session, FineTuningJob, access, name, body.model_dump(exclude_unset=True), if_match)
    response.headers["ETag"] = etag_of(obj)
    return _jobs(session, [obj], access.workspace.name)[0]


@router.delete("/fine-tuning-jobs/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_fine_tuning_job(name: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete(session, FineTuningJob, access, name, if_match)
