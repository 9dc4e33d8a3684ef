"""HTTP routes of model templates: per workspace, and SGP's list across every workspace of the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Response, status

from modelyard.auth import CurrentPrincipal
from modelyard.kit.etag import etag_of
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.routing import DbSession, api_router
from modelyard.kit.schemas import read_model
from modelyard.model_template import service
from modelyard.model_template.schemas import (
    AllModelTemplateFilters,
    ModelTemplateCreate,
    ModelTemplateFilters,
    ModelTemplateRead,
    ModelTemplateUpdate,
)
from modelyard.model_template.tables import ModelTemplate
from modelyard.workspace.dependencies import WorkspaceEditor, WorkspaceReader

router = api_router("/v1", tags=["model templates"])
TEMPLATES = "/workspaces/{ws}/model-templates"

TemplateName = Annotated[str, Path(description="Model template name", max_length=255)]


def _read(template: ModelTemplate, workspace: str) -> ModelTemplateRead:
    return read_model(ModelTemplateRead, template, workspace=workspace)


@router.post(TEMPLATES, status_code=status.HTTP_201_CREATED)
def create_model_template(
    body: ModelTemplateCreate, access: WorkspaceEditor, session: DbSession, response: Response
) -> ModelTemplateRead:
    """Create a template (SGP's fields and defaults). Its parameter schemas and every `${name}` placeholder are
    checked now: 422 INVALID_MODEL_TEMPLATE lists each problem."""
    template = service.create_template(session, access, body.model_dump(mode="json"))
    session.flush()
    response.headers["ETag"] = etag_of(template)
    return _read(template, access.workspace.name)


@router.get(TEMPLATES)
def list_model_templates(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(ModelTemplateFilters))],
) -> Page[ModelTemplateRead]:
    rows, pagination, token = service.list_templates(session, access, query)
    return Page(data=[_read(t, access.workspace.name) for t in rows], pagination=pagination, next_page_token=token)


@router.get(TEMPLATES + "/{template}")
def get_model_template(
    template: TemplateName, access: WorkspaceReader, session: DbSession, response: Response
) -> ModelTemplateRead:
    found = service.get_template(session, access, template)
    response.headers["ETag"] = etag_of(found)
    return _read(found, access.workspace.name)


@router.patch(TEMPLATES + "/{template}")
def update_model_template(
    template: TemplateName,
    body: ModelTemplateUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ModelTemplateRead:
    """Change the description; any other field is refused with 422 MODEL_TEMPLATE_IMMUTABLE (SGP templates are
    immutable: create a new one)."""
    refused = sorted(body.model_extra or {})
    changes = body.model_dump(exclude_unset=True, include={"description"})
    found = service.update_template(session, access, template, changes, refused, if_match)
    response.headers["ETag"] = etag_of(found)
    return _read(found, access.workspace.name)


@router.delete(TEMPLATES + "/{template}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model_template(
    template: TemplateName, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None
) -> None:
    """Delete a template; 409 MODEL_TEMPLATE_IN_USE, naming them, while models made from it exist."""
    service.delete_template(session, access, template, if_match)


@router.get("/model-templates")
def list_all_model_templates(
    principal: CurrentPrincipal,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(AllModelTemplateFilters))],
) -> Page[ModelTemplateRead]:
    """The templates of every workspace you belong to (server admins: all), as SGP lists those of every account a
    user is associated with; `workspace` narrows it to one."""
    rows, pagination, token = service.list_visible_templates(session, principal, query)
    return Page(data=[_read(t, ws) for t, ws in rows], pagination=pagination, next_page_token=token)
