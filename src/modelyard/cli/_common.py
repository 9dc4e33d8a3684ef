"""What the resource commands share: the `--url`, `--token` and `--json` options, the SDK client they go through,
tables for people, JSON for scripts, and errors printed as `error_code: error_msg` with exit code 1.

The SDK and rich.table are imported only when a command runs, so `modelyard --help` stays fast."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.console import RenderableType

    from modelyard.client import Client, ModelyardError

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Server URL (default: MODELYARD_URL, else http://127.0.0.1:8000)", show_default=False),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token (default: MODELYARD_TOKEN, else the file $MODELYARD_HOME/admin-token)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table")]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="Show at most this many results (default: all)", show_default=False)
]
PageSizeOption = Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Results fetched per request")]
SortOption = Annotated[
    str | None,
    typer.Option("--sort", help="Sort key, '-' for descending, e.g. name or -created_at", show_default=False),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Send as Idempotency-Key: a retry with the same key answers the first result again",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]

Columns = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Connection:
    """The global `--url` / `--token` given before the command group (`modelyard --url ... workspaces list`)."""

    url: str | None = None
    token: str | None = None


def _global(ctx: typer.Context) -> Connection:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Connection) else Connection()


def error_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def report_error(exc: ModelyardError) -> None:
    err = error_console()
    err.print(f"{exc.error_code}: {exc.error_msg}", style="red", markup=False)
    if isinstance(exc.detail, list) and len(exc.detail) > 1:  # a single one is already in error_msg
        for item in exc.detail:
            if isinstance(item, Mapping) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", ()))
                err.print(f"  {where}: {item['msg']}", style="red", markup=False)
    if exc.solution_msg:
        err.print(exc.solution_msg, style="red", markup=False)


@contextmanager
def connect(ctx: typer.Context, url: str | None, token: str | None) -> Iterator[Client]:
    """The SDK client for a command (its own --url/--token, else the global ones, else the SDK's defaults); any
    SDK error inside the block is reported and exits with code 1."""
    from modelyard.client import Client, ModelyardError

    given = _global(ctx)
    try:
        with Client(base_url=url or given.url, token=token or given.token) as client:
            yield client
    except ModelyardError as exc:
        report_error(exc)
        raise typer.Exit(1) from None


def delete_confirmed(
    ctx: typer.Context,
    url: str | None,
    token: str | None,
    *,
    yes: bool,
    what: str,
    call: Callable[[Client], object],
    question: str | None = None,
) -> None:
    """Ask (unless --yes), delete through the SDK, and say so: every `... delete` command."""
    if not yes:
        typer.confirm(question or f"Delete {what}?", abort=True)
    with connect(ctx, url, token) as client:
        call(client)
    done(f"Deleted {what}.")


def done(message: str) -> None:
    """A confirmation for people, on stderr so that stdout stays clean for scripts."""
    error_console().print(message, markup=False)


def page_size_for(limit: int | None, page_size: int) -> int:
    return min(limit, page_size) if limit else page_size


def take(items: Iterable[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    return list(islice(items, limit)) if limit else list(items)


def parse_timestamp(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 timestamp from the command line; without a time zone it is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 timestamp (e.g. 2030-01-31T12:00:00Z)", param_hint=option
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _yaml() -> Any:
    """PyYAML, imported only when a command reads or prints YAML."""
    import yaml

    return yaml


def load_yaml(text: str) -> Any:
    """YAML (which also reads JSON) as Python values."""
    return _yaml().safe_load(text)


def yaml_error() -> type[Exception]:
    error: type[Exception] = _yaml().YAMLError
    return error


def print_yaml(data: Any) -> None:
    """JSON values as block YAML, keys in the order given."""
    text = _yaml().safe_dump(json.loads(json.dumps(data)), sort_keys=False, allow_unicode=True)
    typer.echo(text, nl=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _cell(value: Any, *, short_time: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if short_time and isinstance(value, str):
        return _short_time(value)
    return str(value)


def _short_time(value: str) -> str:
    """'2025-01-31T12:00:00.123456Z' as '2025-01-31 12:00:00Z', which fits a table column."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    zone = "Z" if parsed.utcoffset() == timedelta(0) else parsed.strftime("%z")
    return parsed.strftime("%Y-%m-%d %H:%M:%S") + zone


def _is_time(key: str) -> bool:
    return key == "at" or key.endswith("_at")


def print_rich(renderable: RenderableType, *, stderr: bool = False) -> None:
    """A Rich table or tree, on stdout (or stderr)."""
    console = Console(stderr=stderr, highlight=False)
    if console.is_terminal:
        console.print(renderable)
        return
    # Piped or captured: never fold cells, so that each row stays one line for grep and friends, and drop the
    # padding rich puts after the last column.
    console.width = 1000
    with console.capture() as captured:
        console.print(renderable)
    for line in captured.get().splitlines():
        console.out(line.rstrip(), highlight=False)


def print_table(items: Sequence[Mapping[str, Any]], columns: Columns, *, stderr: bool = False) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for _key, header in columns:
        table.add_column(header, overflow="fold")
    for item in items:
        table.add_row(*(_cell(item.get(key), short_time=_is_time(key)) for key, _header in columns))
    print_rich(table, stderr=stderr)
    if not items:
        error_console().print("(no results)", style="dim", markup=False)


def print_fields(item: Mapping[str, Any], fields: Columns | None = None, *, stderr: bool = False) -> None:
    """One resource as a two-column table of field and value."""
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, label in fields or [(k, k) for k in item]:
        table.add_row(label, _cell(item.get(key)))
    print_rich(table, stderr=stderr)


def show(item: Mapping[str, Any], as_json: bool, fields: Columns | None = None) -> None:
    if as_json:
        print_json(item)
    else:
        print_fields(item, fields)


def show_list(items: Sequence[Mapping[str, Any]], as_json: bool, columns: Columns) -> None:
    if as_json:
        print_json(items)
    else:
        print_table(items, columns)
