"""`modelyard users ...`: server accounts (server admins)."""

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

app = typer.Typer(help="Users of the server (server admins only).", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="User name", show_default=False)]

COLUMNS = [
    ("name", "NAME"),
    ("display_name", "DISPLAY NAME"),
    ("is_admin", "SERVER ADMIN"),
    ("created_at", "CREATED"),
]
FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("display_name", "display name"),
    ("is_admin", "server admin"),
    ("created_at", "created at"),
    ("updated_at", "updated at"),
]


@app.command("create")
def create_user(
    ctx: typer.Context,
    name: NameArgument,
    display_name: Annotated[str, typer.Option(help="A name for people")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a server admin")] = False,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user; then give them a token (`modelyard tokens create`) and workspaces (`modelyard members add`)."""
    with connect(ctx, url, token) as client:
        user = client.users.create(name, display_name, admin, idempotency_key=idempotency_key)
    show(user, as_json, FIELDS)


@app.command("list")
def list_users(
    ctx: typer.Context,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    admin: Annotated[
        bool | None,
        typer.Option("--admin/--no-admin", help="Only server admins / only other users", show_default=False),
    ] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List users."""
    with connect(ctx, url, token) as client:
        pager = client.users.list(
            name_prefix=name_prefix, is_admin=admin, sort=sort, page_size=page_size_for(limit, page_size)
        )
        items = take(pager, limit)
    show_list(items, as_json, COLUMNS)


@app.command("show")
def show_user(
    ctx: typer.Context,
    name: NameArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one user (yourself, or anyone for a server admin)."""
    with connect(ctx, url, token) as client:
        user = client.users.get(name)
    show(user, as_json, FIELDS)


@app.command("update")
def update_user(
    ctx: typer.Context,
    name: NameArgument,
    display_name: Annotated[str | None, typer.Option(help="The new display name", show_default=False)] = None,
    admin: Annotated[
        bool | None,
        typer.Option("--admin/--no-admin", help="Grant or take away server admin", show_default=False),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user's display name or server-admin flag."""
    with connect(ctx, url, token) as client:
        user = client.users.update(name, display_name=display_name, is_admin=admin)
    show(user, as_json, FIELDS)


@app.command("delete")
def delete_user(
    ctx: typer.Context, name: NameArgument, yes: YesOption = False, url: UrlOption = None, token: TokenOption = None
) -> None:
    """Delete a user, their tokens and memberships. The last server admin cannot be deleted."""
    delete_confirmed(ctx, url, token, yes=yes, what=f"user '{name}'", call=lambda client: client.users.delete(name))


def show_me(ctx: typer.Context, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Show who the token belongs to, and their workspaces and roles."""
    with connect(ctx, url, token) as client:
        me = client.me()
    if as_json:
        show(me, True)
        return
    memberships = ", ".join(f"{m['workspace']} ({m['role']})" for m in me.get("memberships", []))
    show({**me, "memberships": memberships or "-"}, False, [*FIELDS, ("memberships", "workspaces")])
