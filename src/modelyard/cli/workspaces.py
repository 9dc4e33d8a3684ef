"""`modelyard workspaces ...`: create, list, show, update and delete workspaces."""

from __future__ import annotations

from typing import Annotated

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
    page_size_for,
    show,
    show_list,
    take,
)

app = typer.Typer(help="Workspaces: the scope of every resource, with members and roles.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Workspace name", show_default=False)]

COLUMNS = [
    ("name", "NAME"),
    ("description", "DESCRIPTION"),
    ("role", "YOUR ROLE"),
    ("created_by", "CREATED BY"),
    ("created_at", "CREATED"),
]
FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("description", "description"),
    ("role", "your role"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_by", "updated by"),
    ("updated_at", "updated at"),
]


@app.command("create")
def create_workspace(
    ctx: typer.Context,
    name: NameArgument,
    description: Annotated[str, typer.Option(help="Free text, at most 1000 characters")] = "",
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace; you become its admin."""
    with connect(ctx, url, token) as client:
        workspace = client.workspaces.create(name, description, idempotency_key=idempotency_key)
    show(workspace, as_json, FIELDS)


@app.command("list")
def list_workspaces(
    ctx: typer.Context,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the workspaces you belong to (every workspace, for a server admin)."""
    with connect(ctx, url, token) as client:
        pager = client.workspaces.list(name_prefix=name_prefix, sort=sort, page_size=page_size_for(limit, page_size))
        items = take(pager, limit)
    show_list(items, as_json, COLUMNS)


@app.command("show")
def show_workspace(
    ctx: typer.Context,
    name: NameArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one workspace."""
    with connect(ctx, url, token) as client:
        workspace = client.workspaces.get(name)
    show(workspace, as_json, FIELDS)


@app.command("update")
def update_workspace(
    ctx: typer.Context,
    name: NameArgument,
    description: Annotated[str, typer.Option(help="The new description", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a workspace's description (workspace admins)."""
    with connect(ctx, url, token) as client:
        workspace = client.workspaces.update(name, description=description)
    show(workspace, as_json, FIELDS)


@app.command("delete")
def delete_workspace(
    ctx: typer.Context,
    name: NameArgument,
    cascade: Annotated[bool, typer.Option("--cascade", help="Also delete every resource the workspace holds")] = False,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a workspace (workspace admins). Refused while it holds resources, unless --cascade."""
    extra = " and every resource in it" if cascade else ""
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"workspace '{name}'",
        call=lambda client: client.workspaces.delete(name, cascade=cascade),
        question=f"Delete workspace '{name}'{extra}?",
    )
