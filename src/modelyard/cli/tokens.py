"""`modelyard tokens ...`: API tokens. The secret is shown once, when the token is created."""

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
    parse_timestamp,
    print_fields,
    print_json,
    show_list,
    take,
)

app = typer.Typer(help="API tokens: create (the secret is shown once), list and revoke.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("user", "USER"),
    ("token_prefix", "PREFIX"),
    ("expires_at", "EXPIRES"),
    ("created_at", "CREATED"),
]


@app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token, e.g. where it is used", show_default=False)],
    user: Annotated[
        str | None, typer.Option(help="Whose token (default: yours); server admins may name anyone", show_default=False)
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            help="When it stops working, ISO 8601 (UTC if no zone), e.g. 2030-01-31T00:00:00Z", show_default=False
        ),
    ] = None,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token. Without --json, the secret alone goes to stdout and the details to stderr, so that
    `$(modelyard tokens create NAME)` captures just the secret."""
    expires = parse_timestamp(expires_at, "--expires-at")
    with connect(ctx, url, token) as client:
        created = client.tokens.create(name, user, expires, idempotency_key=idempotency_key)
    if as_json:
        print_json(created)
        return
    print_fields(created, COLUMNS, stderr=True)
    done("The secret below is shown only now; store it:")
    typer.echo(created["token"])


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option(help="Only this user's tokens (server admins)", show_default=False)
    ] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List your tokens (a server admin sees every token). Secrets are never shown again."""
    with connect(ctx, url, token) as client:
        items = take(client.tokens.list(user, sort=sort, page_size=page_size_for(limit, page_size)), limit)
    show_list(items, as_json, COLUMNS)


@app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (see `tokens list`)", show_default=False)
    ],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token: it stops working at once."""
    with connect(ctx, url, token) as client:
        client.tokens.revoke(token_id)
    done(f"Revoked token {token_id}.")
