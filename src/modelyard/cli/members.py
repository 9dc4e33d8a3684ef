"""`modelyard members ...`: who may do what in a workspace."""

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
    connect,
    done,
    page_size_for,
    show,
    show_list,
    take,
)

app = typer.Typer(help="Workspace members and their roles (viewer, editor, admin).", no_args_is_help=True)

WorkspaceArgument = Annotated[str, typer.Argument(help="Workspace name", show_default=False)]
UserArgument = Annotated[str, typer.Argument(help="User name", show_default=False)]
RoleOption = Annotated[str, typer.Option("--role", help="viewer, editor or admin", show_default=False)]

COLUMNS = [
    ("user", "USER"),
    ("display_name", "DISPLAY NAME"),
    ("role", "ROLE"),
    ("created_at", "MEMBER SINCE"),
]


@app.command("list")
def list_members(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    role: Annotated[str | None, typer.Option(help="Only members with this role", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the members of a workspace."""
    with connect(ctx, url, token) as client:
        pager = client.members.list(workspace, role=role, sort=sort, page_size=page_size_for(limit, page_size))
        items = take(pager, limit)
    show_list(items, as_json, COLUMNS)


@app.command("add")
def add_member(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    user: UserArgument,
    role: RoleOption,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a workspace with a role (workspace admins)."""
    with connect(ctx, url, token) as client:
        member = client.members.add(workspace, user, role, idempotency_key=idempotency_key)
    show(member, as_json, COLUMNS)


@app.command("set-role")
def set_member_role(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    user: UserArgument,
    role: RoleOption,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a member's role (workspace admins)."""
    with connect(ctx, url, token) as client:
        member = client.members.set_role(workspace, user, role)
    show(member, as_json, COLUMNS)


@app.command("remove")
def remove_member(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    user: UserArgument,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Remove a user from a workspace (workspace admins). The last admin cannot be removed."""
    with connect(ctx, url, token) as client:
        client.members.remove(workspace, user)
    done(f"Removed '{user}' from workspace '{workspace}'.")
