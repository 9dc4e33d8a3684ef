"""`modelyard templates ...`: model templates (Scale GenAI Platform's), the launch scaffolding models are made from.

A template is created from a JSON or YAML file holding SGP's body; it is immutable afterwards, except for its
description."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._common import (
    IdempotencyOption,
    JsonOption,
    LimitOption,
    PageSizeOption,
    SortOption,
    TokenOption,
    UrlOption,
    YesOption,
    connect,
    delete_confirmed,
    load_yaml,
    page_size_for,
    show,
    show_list,
    take,
    yaml_error,
)

app = typer.Typer(
    help="Model templates: the image, resources and parameter schemas that models are made from (SGP's).",
    no_args_is_help=True,
)

TemplateArgument = Annotated[
    str, typer.Argument(metavar="WS/NAME", help="The template, as workspace/name", show_default=False)
]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--type",
        metavar="TYPE",
        help="Only this model type: COMPLETION, CHAT_COMPLETION, AGENT, EMBEDDING, RERANKING or GENERIC (any case)",
        show_default=False,
    ),
]
EndpointTypeOption = Annotated[
    str | None,
    typer.Option(
        metavar="TYPE", help="Only this endpoint type: SYNC, ASYNC, STREAMING or BATCH (any case)", show_default=False
    ),
]

TEMPLATE_COLUMNS = [
    ("workspace", "WORKSPACE"),
    ("name", "NAME"),
    ("model_type", "MODEL TYPE"),
    ("endpoint_type", "ENDPOINT TYPE"),
    ("endpoint_protocol", "PROTOCOL"),
    ("image", "IMAGE"),
    ("description", "DESCRIPTION"),
    ("updated_at", "UPDATED"),
]
TEMPLATE_FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("description", "description"),
    ("model_type", "model type"),
    ("endpoint_type", "endpoint type"),
    ("endpoint_protocol", "endpoint protocol"),
    ("image", "image"),
    ("command", "command"),
    ("resources", "resources"),
    ("creation_parameters", "creation parameters"),
    ("request_parameters", "request parameters"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_by", "updated by"),
    ("updated_at", "updated at"),
]


def split_template(ref: str, param_hint: str = "'WS/NAME'") -> tuple[str, str]:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise typer.BadParameter(
            f"Expected a template as 'workspace/name' (e.g. default/vllm-chat), got {ref!r}", param_hint=param_hint
        )
    return parts[0], parts[1]


def read_document(path: str, param_hint: str = "'--file'") -> dict[str, Any]:
    """A JSON or YAML object from a file ('-': standard input). `.json` is read as JSON; anything else as YAML,
    which also reads JSON."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"Cannot read {path}: {exc.strerror or exc}", param_hint=param_hint) from None
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise typer.BadParameter(f"{path} is not valid JSON: {exc}", param_hint=param_hint) from None
    else:
        try:
            data = load_yaml(text)
        except yaml_error() as exc:
            raise typer.BadParameter(f"{path} is not valid YAML or JSON: {exc}", param_hint=param_hint) from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold one object (a mapping of fields)", param_hint=param_hint)
    return data


def _image(template: Mapping[str, Any]) -> str | None:
    bundle = (template.get("vendor_configuration") or {}).get("bundle_config") or {}
    if not bundle.get("image"):
        return None
    return f"{bundle.get('registry')}/{bundle.get('image')}:{bundle.get('tag')}"


def _parameters(schema: Any) -> str | None:
    """A parameter schema in one line: 'weights (str, required), max_len (int)'."""
    if not isinstance(schema, Mapping):
        return None
    if isinstance(schema.get("parameters"), list):  # SGP's form
        items = [
            f"{p.get('name')} ({p.get('type')}{', required' if p.get('required') else ''})"
            for p in schema["parameters"]
            if isinstance(p, Mapping)
        ]
    else:  # a JSON Schema
        required = set(schema.get("required") or [])
        properties = schema.get("properties") or {}
        items = [
            f"{name} ({spec.get('type', 'any') if isinstance(spec, Mapping) else 'any'}"
            f"{', required' if name in required else ''})"
            for name, spec in properties.items()
        ]
    return ", ".join(items) or None


def _resources(template: Mapping[str, Any]) -> str | None:
    endpoint = (template.get("vendor_configuration") or {}).get("endpoint_config")
    if not isinstance(endpoint, Mapping):
        return None
    gpus = f", {endpoint.get('gpus')} x {endpoint.get('gpu_type')}" if endpoint.get("gpus") else ""
    return (
        f"{endpoint.get('cpus')} cpus, {endpoint.get('memory')} memory, {endpoint.get('storage')} storage{gpus}; "
        f"{endpoint.get('min_workers')}-{endpoint.get('max_workers')} workers"
    )


def _row(template: Mapping[str, Any]) -> dict[str, Any]:
    bundle = (template.get("vendor_configuration") or {}).get("bundle_config") or {}
    command = bundle.get("command")
    return {
        **template,
        "image": _image(template),
        "command": " ".join(str(c) for c in command) if isinstance(command, list) else None,
        "resources": _resources(template),
        "creation_parameters": _parameters(template.get("model_creation_parameters_schema")),
        "request_parameters": _parameters(template.get("model_request_parameters_schema")),
    }


def _show(template: Mapping[str, Any], as_json: bool) -> None:
    show(template if as_json else _row(template), as_json, TEMPLATE_FIELDS)


@app.command("create")
def create_template(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)],
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="SGP's template body: a .json file, or YAML (any other name; '-' for standard input)",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="The template's name, instead of the file's", show_default=False)
    ] = None,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a template from a JSON or YAML file (editors); SGP's defaults are filled in."""
    body = read_document(file)
    with connect(ctx, url, token) as client:
        created = client.model_templates.create(workspace, body, name=name, idempotency_key=idempotency_key)
    _show(created, as_json)


@app.command("list")
def list_templates(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Argument(metavar="[WS]", help="Workspace name (default: every workspace you belong to)"),
    ] = None,
    all_workspaces: Annotated[
        bool, typer.Option("--all", help="The templates of every workspace you belong to (the default without WS)")
    ] = False,
    model_type: TypeOption = None,
    endpoint_type: EndpointTypeOption = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the templates of a workspace, or of every workspace you belong to, newest first."""
    if workspace is not None and all_workspaces:
        raise typer.BadParameter("Give either WS or --all, not both", param_hint="'--all'")
    filters: dict[str, Any] = {
        "model_type": model_type.upper() if model_type else None,
        "endpoint_type": endpoint_type.upper() if endpoint_type else None,
        "name_prefix": name_prefix,
        "sort": sort,
    }
    size = page_size_for(limit, page_size)
    with connect(ctx, url, token) as client:
        if workspace is None:
            pager = client.model_templates.list_all(page_size=size, **filters)
        else:
            pager = client.model_templates.list(workspace, page_size=size, **filters)
        items = take(pager, limit)
    show_list(items if as_json else [_row(t) for t in items], as_json, TEMPLATE_COLUMNS)


@app.command("show")
def show_template(
    ctx: typer.Context,
    template: TemplateArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one template: its image, resources and parameters (--json for the whole vendor_configuration)."""
    workspace, name = split_template(template)
    with connect(ctx, url, token) as client:
        found = client.model_templates.get(workspace, name)
    _show(found, as_json)


@app.command("update")
def update_template(
    ctx: typer.Context,
    template: TemplateArgument,
    description: Annotated[str, typer.Option(help="The new description", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a template's description (editors); nothing else of a template changes: create a new one."""
    workspace, name = split_template(template)
    with connect(ctx, url, token) as client:
        updated = client.model_templates.update(workspace, name, description=description)
    _show(updated, as_json)


@app.command("delete")
def delete_template(
    ctx: typer.Context,
    template: TemplateArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a template (editors). Refused while models made from it exist."""
    workspace, name = split_template(template)
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"model template '{workspace}/{name}'",
        call=lambda client: client.model_templates.delete(workspace, name),
    )
