"""The web UI's routes: login and logout, a page per resource the API serves (through the same services and the same
access rules), and two writes through forms: enabling or disabling an adapter, and making a version current."""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import secrets
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from modelyard.adapter import service as adapter_service
from modelyard.adapter.endpoints import adapters_read
from modelyard.adapter.schemas import AdapterFilters
from modelyard.auth import principal_of_token
from modelyard.errors import ModelyardError, NotFound, Unauthorized, validation_error
from modelyard.event import service as event_service
from modelyard.event.schemas import EventFilters, to_read
from modelyard.fileset import paths
from modelyard.fileset import service as fileset_service
from modelyard.fileset.schemas import FileFilters, FileRead, FilesetFilters, FilesetRead
from modelyard.kit.etag import etag_of
from modelyard.kit.pagination import Filters, ListQuery, NoFilters, Pagination, filter_values_of
from modelyard.kit.routing import DbSession
from modelyard.kit.schemas import read_model
from modelyard.lineage import service as lineage_service
from modelyard.lineage.tables import Dataset, FineTuningJob, Prompt
from modelyard.model import service as model_service
from modelyard.model.endpoints import model_read, version_read
from modelyard.model.schemas import ManifestEntry, ModelFilters, VersionFilters
from modelyard.model.sources import parse_model_path
from modelyard.model_template import service as template_service
from modelyard.model_template.schemas import ModelTemplateFilters, ModelTemplateRead
from modelyard.web.rendering import UiRoute, render, url
from modelyard.web.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CheckedForm,
    UiUser,
    check_csrf,
    clear_cookie,
    form_of,
    new_session_cookie,
    safe_next,
    session_csrf,
    set_cookie,
)
from modelyard.workspace import service as workspace_service
from modelyard.workspace.schemas import WorkspaceFilters
from modelyard.workspace.service import WorkspaceAccess
from modelyard.workspace.tables import Role

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 50  # rows of a list page
PREVIEW_SIZE = 10  # rows of each list on a workspace's page
Name = Annotated[str, Path(max_length=255)]
VersionName = Annotated[str, Path(max_length=64)]


# -- helpers ---------------------------------------------------------------------------------------------------------


def _list_query(
    request: Request,
    filters: type[Filters],
    fields: tuple[str, ...],
    *,
    sort: str,
    page_size: int = PAGE_SIZE,
) -> ListQuery:
    """The list query of a page: its filters (the query parameters `fields`, validated by the list's own filter set
    as the API validates them) and the keyset `page_token` of the API's lists."""
    params = request.query_params
    given = {name: params[name] for name in fields if params.get(name)}
    try:
        chosen = filters.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from exc
    return ListQuery(
        page=1,
        page_size=page_size,
        sort=sort,
        page_token=params.get("page_token") or None,
        filters=filter_values_of(chosen),
    )


def _pager(request: Request, pagination: Pagination, token: str | None) -> dict[str, Any]:
    """What the pager of a list shows: counts, and the links to the next page (keyset) and back to the first, with
    the list's filters kept."""
    params = {k: v for k, v in request.query_params.items() if v and k not in ("page_token", "done")}
    path = quote(request.url.path, safe="/")
    first = path + ("?" + urlencode(params) if params else "")
    return {
        "pagination": pagination,
        "next": path + "?" + urlencode({**params, "page_token": token}) if token else None,
        "first": first if request.query_params.get("page_token") else None,
    }


def _workspace(session: Session, me: UiUser, ws: str, role: Role = Role.VIEWER) -> WorkspaceAccess:
    return workspace_service.access(session, me.principal, ws, role)


def _can_write(access: WorkspaceAccess) -> bool:
    return workspace_service.has_role(access.principal, access.role, Role.EDITOR)


def _split_ref(ref: str | None) -> tuple[str, str] | None:
    if not ref or ref.count("/") != 1:
        return None
    workspace, name = ref.split("/")
    return (workspace, name) if workspace and name else None


def _fileset_of(model_path: str, workspace: str) -> tuple[str, str] | None:
    """The fileset a version's `model_path` names, for a link; None for another kind of source."""
    if not model_path:
        return None
    try:
        ref = parse_model_path(model_path, workspace, ["model_path"])
    except ModelyardError:
        return None
    return (ref.workspace, ref.fileset) if ref.kind == "fileset" else None


def _edges(graph: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """A lineage graph's edges as (source node, relation, target node), in the graph's order."""
    nodes = {f"{n['kind']}:{n['id']}": n for n in graph["nodes"]}
    return [(nodes[e["source"]], e["relation"], nodes[e["target"]]) for e in graph["edges"]]


def _done(path: str, what: str) -> RedirectResponse:
    return RedirectResponse(path + "?" + urlencode({"done": what}), status_code=303)


# -- the root, static files, login -----------------------------------------------------------------------------------


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse(url(), status_code=307)


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """The files of static/ (a stylesheet), read once: name -> (content, content type, ETag)."""
    found = {}
    for item in resources.files("modelyard.web").joinpath("static").iterdir():
        if item.is_file():
            content = item.read_bytes()
            kind = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
            found[item.name] = (content, kind, '"' + hashlib.sha256(content).hexdigest()[:20] + '"')
    return found


STATIC = _static_files()


@router.get("/ui/static/{name}")
async def static_file(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        raise NotFound(f"No static file '{name}'", error_code="NOT_FOUND")
    content, kind, etag = found
    return Response(content, media_type=kind, headers={"ETag": etag, "Cache-Control": "public, max-age=3600"})


def _login_form(request: Request, next_path: str, status_code: int = 200, message: str = "") -> Response:
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", status_code, next=next_path, login_nonce=nonce, message=message)
    set_cookie(request, response, LOGIN_COOKIE, nonce)
    return response


@router.get("/ui/login")
async def login_page(request: Request) -> Response:
    return _login_form(request, safe_next(request.query_params.get("next")))


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Check the token as the API does, then keep it in the session cookie (HttpOnly, SameSite=Strict)."""
    form = await form_of(request)
    next_path = safe_next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(nonce.encode(), form.get("login_nonce", "").encode()):
        # A form this browser was not given (a cross-site post, or cookies off): sign-in CSRF.
        return _login_form(
            request, next_path, 403, "The sign-in form expired or did not come from this site. Try again."
        )
    token = form.get("token", "").strip()
    if not token:
        return _login_form(request, next_path, 401, "Enter an API token.")
    try:
        await principal_of_token(request, token)
    except Unauthorized as exc:
        return _login_form(request, next_path, 401, exc.error_msg)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, new_session_cookie(token))
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    expected = session_csrf(request)
    if expected is not None:
        check_csrf(expected, (await form_of(request)).get("csrf_token"))
    response = RedirectResponse(url("login"), status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


# -- pages -----------------------------------------------------------------------------------------------------------


@router.get("/ui")
def home(request: Request, session: DbSession, me: UiUser) -> Response:
    query = _list_query(request, WorkspaceFilters, ("name_prefix",), sort="name")
    rows, pagination, token = workspace_service.list_workspaces(session, me.principal, query)
    return render(
        request,
        "home.html",
        workspaces=rows,
        pager=_pager(request, pagination, token),
        name_prefix=query.filters.get("name_prefix", ""),
    )


@router.get("/ui/workspaces/{ws}")
def workspace_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    first = ListQuery(page=1, page_size=PREVIEW_SIZE, sort="name", page_token=None)
    models, models_page, _ = model_service.list_models(session, access, first)
    adapters, adapters_page, _ = adapter_service.list_adapters(session, access, first)
    filesets, filesets_page, _ = fileset_service.list_filesets(session, access, first)
    templates, templates_page, _ = template_service.list_templates(session, access, first)
    members, members_page, _ = workspace_service.list_members(
        session, access, ListQuery(page=1, page_size=PREVIEW_SIZE, sort="created_at", page_token=None)
    )
    lineage = {
        "fine-tuning jobs": lineage_service.listing(session, FineTuningJob, access, first)[:2],
        "prompts": lineage_service.listing(session, Prompt, access, first)[:2],
        "datasets": lineage_service.listing(session, Dataset, access, first)[:2],
    }
    events, _events_page, _ = event_service.list_events(
        session, access.workspace.id, ListQuery(page=1, page_size=PREVIEW_SIZE, sort="-at", page_token=None)
    )
    return render(
        request,
        "workspace.html",
        access=access,
        ws=access.workspace.name,
        models=models,
        models_page=models_page,
        adapters=adapters_read(session, adapters),
        adapters_page=adapters_page,
        filesets=filesets,
        filesets_page=filesets_page,
        templates=templates,
        templates_page=templates_page,
        members=members,
        members_page=members_page,
        lineage=lineage,
        events=[to_read(e) for e in events],
    )


@router.get("/ui/workspaces/{ws}/models")
def models_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    query = _list_query(request, ModelFilters, ("name_prefix", "model_type"), sort="name")
    models, pagination, token = model_service.list_models(session, access, query)
    return render(
        request,
        "models.html",
        ws=access.workspace.name,
        models=models,
        pager=_pager(request, pagination, token),
        name_prefix=query.filters.get("name_prefix", ""),
    )


@router.get("/ui/workspaces/{ws}/models/{model}")
def model_page(ws: Name, model: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = model_service.model_access(session, me.principal, ws, model, Role.VIEWER)
    workspace = access.ws.workspace.name
    answer = model_read(session, access.model, workspace)
    query = _list_query(request, VersionFilters, ("status",), sort="-created_at")
    versions, pagination, token = model_service.list_versions(session, access, query)
    rows = [(version_read(v, access), _fileset_of(v.model_path, workspace)) for v in versions]
    return render(
        request,
        "model.html",
        ws=workspace,
        model=answer,
        versions=rows,
        pager=_pager(request, pagination, token),
        can_write=_can_write(access.ws),
        etag=etag_of(access.model),
        template_ref=_split_ref(answer.model_template),
        done=request.query_params.get("done", ""),
    )


@router.get("/ui/workspaces/{ws}/models/{model}/versions/{version}")
def version_page(
    ws: Name, model: Name, version: VersionName, request: Request, session: DbSession, me: UiUser
) -> Response:
    access = model_service.model_access(session, me.principal, ws, model, Role.VIEWER)
    workspace = access.ws.workspace.name
    found = model_service.get_version(session, access, version)
    query = _list_query(request, NoFilters, (), sort="path")
    files, pagination, token = model_service.list_manifest(session, access, version, query)
    return render(
        request,
        "version.html",
        ws=workspace,
        model=access.model.name,
        version=version_read(found, access),
        fileset=_fileset_of(found.model_path, workspace),
        files=[ManifestEntry.model_validate(f) for f in files],
        pager=_pager(request, pagination, token),
        can_write=_can_write(access.ws),
        etag=etag_of(access.model),
    )


@router.post("/ui/workspaces/{ws}/models/{model}/current-version")
def set_current_version(
    ws: Name, model: Name, request: Request, session: DbSession, me: UiUser, form: CheckedForm
) -> Response:
    """Make a READY version current: the API's PUT of the model with `current_version_id`, with the ETag the page
    was drawn from as `If-Match` (412 if the model changed meanwhile)."""
    access = model_service.model_access(session, me.principal, ws, model, Role.EDITOR)
    version_id = form.get("version_id", "")
    if not version_id or len(version_id) > 40:
        raise validation_error(["form", "version_id"], "Field required: the id of a READY version", "missing")
    roots = list(request.app.state.ctx.settings.allowed_local_roots)
    model_service.replace_model(session, access, {"current_version_id": version_id}, form.get("etag") or None, roots)
    return _done(url("workspaces", access.ws.workspace.name, "models", access.model.name), "current")


@router.get("/ui/workspaces/{ws}/adapters")
def adapters_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    query = _list_query(request, AdapterFilters, ("name_prefix", "model", "enabled", "finetuning_type"), sort="name")
    adapters, pagination, token = adapter_service.list_adapters(session, access, query)
    return render(
        request,
        "adapters.html",
        ws=access.workspace.name,
        adapters=adapters_read(session, adapters),
        pager=_pager(request, pagination, token),
        filters={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.filters.items()},
    )


@router.get("/ui/workspaces/{ws}/adapters/{adapter}")
def adapter_page(ws: Name, adapter: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    found = adapter_service.get_adapter(session, access, adapter)
    fraction, split, job = adapter_service.dataset_split(session, access, adapter)
    graph = adapter_service.lineage_graph(session, access, adapter)
    return render(
        request,
        "adapter.html",
        ws=access.workspace.name,
        adapter=adapters_read(session, [found])[0],
        split={"dataset_fraction": fraction, "train_test_split": split, "fine_tuning_job": job},
        lineage=_edges(graph),
        can_write=_can_write(access),
        etag=etag_of(found),
        done=request.query_params.get("done", ""),
    )


@router.post("/ui/workspaces/{ws}/adapters/{adapter}/enabled")
def set_adapter_enabled(
    ws: Name, adapter: Name, request: Request, session: DbSession, me: UiUser, form: CheckedForm
) -> Response:
    """Enable or disable an adapter: the API's PATCH with `enabled`, with the page's ETag as `If-Match`."""
    access = _workspace(session, me, ws, Role.EDITOR)
    value = form.get("enabled", "")
    if value not in ("true", "false"):
        raise validation_error(["form", "enabled"], "Input should be 'true' or 'false'", "enum")
    app = request.app.state.ctx
    context = adapter_service.Context(settings=app.settings, store=app.store, db=app.db)
    found = adapter_service.update_adapter(
        session, access, adapter, {"enabled": value == "true"}, context, form.get("etag") or None
    )
    return _done(
        url("workspaces", access.workspace.name, "adapters", found.name), "enabled" if found.enabled else "disabled"
    )


@router.get("/ui/workspaces/{ws}/filesets")
def filesets_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    query = _list_query(request, FilesetFilters, ("name_prefix", "purpose"), sort="name")
    filesets, pagination, token = fileset_service.list_filesets(session, access, query)
    return render(
        request,
        "filesets.html",
        ws=access.workspace.name,
        filesets=[read_model(FilesetRead, f, workspace=access.workspace.name) for f in filesets],
        pager=_pager(request, pagination, token),
        name_prefix=query.filters.get("name_prefix", ""),
    )


@router.get("/ui/workspaces/{ws}/filesets/{fileset}")
def fileset_page(ws: Name, fileset: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    found = fileset_service.get_fileset(session, access, fileset)
    query = _list_query(request, FileFilters, ("path",), sort="path")
    prefix = paths.normalize_prefix(str(query.filters.get("path", "")))
    files, pagination, token = fileset_service.list_files(session, access, fileset, prefix, query)
    return render(
        request,
        "fileset.html",
        ws=access.workspace.name,
        fileset=read_model(FilesetRead, found, workspace=access.workspace.name),
        files=[FileRead.model_validate(f) for f in files],
        pager=_pager(request, pagination, token),
        path_prefix=query.filters.get("path", ""),
    )


@router.get("/ui/workspaces/{ws}/model-templates")
def templates_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    query = _list_query(request, ModelTemplateFilters, ("name_prefix",), sort="name")
    templates, pagination, token = template_service.list_templates(session, access, query)
    return render(
        request,
        "templates.html",
        ws=access.workspace.name,
        templates=templates,
        pager=_pager(request, pagination, token),
        name_prefix=query.filters.get("name_prefix", ""),
    )


@router.get("/ui/workspaces/{ws}/model-templates/{template}")
def template_page(ws: Name, template: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    found = template_service.get_template(session, access, template)
    answer = read_model(ModelTemplateRead, found, workspace=access.workspace.name)
    return render(
        request,
        "template.html",
        ws=access.workspace.name,
        template=answer,
        vendor_configuration=answer.vendor_configuration.model_dump(mode="json", exclude_none=True),
    )


@router.get("/ui/workspaces/{ws}/events")
def events_page(ws: Name, request: Request, session: DbSession, me: UiUser) -> Response:
    access = _workspace(session, me, ws)
    query = _list_query(request, EventFilters, ("action", "resource_kind", "since"), sort="-at")
    events, pagination, token = event_service.list_events(session, access.workspace.id, query)
    return render(
        request,
        "events.html",
        ws=access.workspace.name,
        events=[to_read(e) for e in events],
        pager=_pager(request, pagination, token),
        filters={k: str(request.query_params.get(k, "")) for k in ("action", "resource_kind")},
    )
