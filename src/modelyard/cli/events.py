"""`modelyard events list WS`: a workspace's audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelyard.cli._common import (
    JsonOption,
    LimitOption,
    PageSizeOption,
    SortOption,
    TokenOption,
    UrlOption,
    connect,
    page_size_for,
    parse_timestamp,
    show_list,
    take,
)

app = typer.Typer(help="The audit log of a workspace.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("at", "AT"),
    ("actor", "ACTOR"),
    ("action", "ACTION"),
    ("resource_name", "RESOURCE"),
    ("changes", "CHANGES"),
]


def _row(event: dict[str, Any]) -> dict[str, Any]:
    resource = event.get("resource") or {}
    return {**event, "resource_name": f"{resource.get('kind', '')}/{resource.get('name', '')}"}


@app.command("list")
def list_events(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(help="Workspace name", show_default=False)],
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. member.added", show_default=False)] = None,
    resource_kind: Annotated[
        str | None, typer.Option(help="Only this kind of resource, e.g. workspace, member", show_default=False)
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this ISO 8601 time (UTC if no zone)", show_default=False)
    ] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a workspace's events, newest first (--sort at for oldest first)."""
    after = parse_timestamp(since, "--since")
    with connect(ctx, url, token) as client:
        pager = client.events.list(
            workspace, action, resource_kind, after, sort=sort, page_size=page_size_for(limit, page_size)
        )
        items = take(pager, limit)
    if as_json:
        show_list(items, True, COLUMNS)
    else:
        show_list([_row(e) for e in items], False, COLUMNS)
