"""`modelyard filesets ...`: filesets and their files, with uploads and downloads of whole directories.

Transfers show a progress bar on a terminal (on stderr) and end with a summary: a line for people on stderr, or with
`--json` an object on stdout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

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
    done,
    error_console,
    page_size_for,
    print_json,
    show,
    show_list,
    take,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from modelyard.client import Client, TransferEvent

app = typer.Typer(
    help="Filesets: the files behind models, adapters and datasets, uploaded and downloaded as directories.",
    no_args_is_help=True,
)

FilesetArgument = Annotated[
    str, typer.Argument(metavar="WS/NAME", help="The fileset, as workspace/name", show_default=False)
]
PurposeOption = Annotated[
    str | None, typer.Option(help="model, dataset or generic", show_default=False, metavar="PURPOSE")
]
StorageOption = Annotated[str | None, typer.Option(help="local or s3", show_default=False, metavar="STORAGE")]

COLUMNS = [
    ("name", "NAME"),
    ("purpose", "PURPOSE"),
    ("storage", "STORAGE"),
    ("file_count", "FILES"),
    ("size", "SIZE"),
    ("description", "DESCRIPTION"),
    ("updated_at", "UPDATED"),
]
FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("description", "description"),
    ("purpose", "purpose"),
    ("storage", "storage"),
    ("file_count", "files"),
    ("size", "size"),
    ("digest", "digest"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_by", "updated by"),
    ("updated_at", "updated at"),
]
FILE_COLUMNS = [("path", "PATH"), ("size", "SIZE"), ("sha256", "SHA256"), ("updated_at", "UPDATED")]


def _split(ref: str, param_hint: str = "'WS/NAME'") -> tuple[str, str]:
    from modelyard.client._filesets import split_fileset

    try:
        return split_fileset(ref)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from None


def _size(value: Any) -> str:
    from rich.filesize import decimal

    return decimal(int(value)) if isinstance(value, int) else "-"


def _fileset_row(fileset: dict[str, Any]) -> dict[str, Any]:
    return {**fileset, "size": _size(fileset.get("total_size"))}


def _fileset_fields(fileset: dict[str, Any]) -> dict[str, Any]:
    total = fileset.get("total_size")
    if not isinstance(total, int):
        return {**fileset, "size": "-"}
    return {**fileset, "size": _size(total) if total < 1000 else f"{_size(total)} ({total} bytes)"}


def _show_fileset(fileset: dict[str, Any], as_json: bool) -> None:
    show(fileset if as_json else _fileset_fields(fileset), as_json, FIELDS)


@contextmanager
def _local_errors() -> Iterator[None]:
    """A local file or directory that cannot be read or written is reported like a server error: exit code 1."""
    try:
        yield
    except OSError as exc:
        error_console().print(f"LOCAL_ERROR: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None


class _Bar:
    """The SDK's transfer events drawn as a Rich progress bar on stderr: bytes, rate, time left and files done."""

    def __init__(self, verb: str, fileset: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.verb = verb
        self.files_total = 0
        self.files_done = 0
        self.skipped = 0
        self.progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[files]}"),
            console=error_console(),
        )
        self.task: TaskID = self.progress.add_task(f"Comparing with {fileset}", total=None, files="")

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def _files(self) -> str:
        unchanged = f", {self.skipped} unchanged" if self.skipped else ""
        return f"{self.files_done}/{self.files_total} files{unchanged}"

    def __call__(self, event: TransferEvent) -> None:
        if event.kind == "skipped":
            self.skipped += 1
            self.progress.update(self.task, files=f"{self.skipped} unchanged")
        elif event.kind == "start":
            self.files_total = event.files_total
            self.progress.update(self.task, description=self.verb, total=event.bytes_total, files=self._files())
        elif event.kind == "bytes":
            self.progress.advance(self.task, event.bytes)
        elif event.kind == "file_done":
            self.files_done += 1
            self.progress.update(self.task, files=self._files())


@contextmanager
def _progress(verb: str, fileset: str) -> Iterator[_Bar | None]:
    """A progress bar when stderr is a terminal; nothing otherwise (logs and CI stay clean)."""
    if not error_console().is_terminal:
        yield None
        return
    with _Bar(verb, fileset) as bar:
        yield bar


def _rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / 1e6, 3) if seconds > 0 else 0.0


def _summary_line(verb: str, count: int, nbytes: int, seconds: float, where: str, skipped: int) -> str:
    """E.g. 'Uploaded 3 files (1.2 MB) to default/llama in 0.4 s (3.0 MB/s); skipped 2 unchanged files.'"""
    files = "file" if count == 1 else "files"
    line = f"{verb} {count} {files}"
    if count:
        line += f" ({_size(nbytes)})"
    line += f" {where} in {seconds:.1f} s"
    if count:
        line += f" ({_rate(nbytes, seconds):.1f} MB/s)"
    if skipped:
        line += f"; skipped {skipped} unchanged {'file' if skipped == 1 else 'files'}"
    return line + "."


@app.command("create")
def create_fileset(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)],
    name: Annotated[str, typer.Argument(help="Fileset name", show_default=False)],
    description: Annotated[str, typer.Option(help="Free text, at most 1000 characters")] = "",
    purpose: Annotated[str, typer.Option(help="model, dataset or generic", metavar="PURPOSE")] = "generic",
    storage: StorageOption = None,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an empty fileset (editors). Storage defaults to the server's store."""
    with connect(ctx, url, token) as client:
        fileset = client.filesets.create(
            workspace, name, description, purpose, storage, idempotency_key=idempotency_key
        )
    _show_fileset(fileset, as_json)


@app.command("list")
def list_filesets(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)],
    purpose: PurposeOption = None,
    storage: StorageOption = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the filesets of a workspace, newest first."""
    with connect(ctx, url, token) as client:
        pager = client.filesets.list(
            workspace,
            purpose=purpose,
            storage=storage,
            name_prefix=name_prefix,
            sort=sort,
            page_size=page_size_for(limit, page_size),
        )
        items = take(pager, limit)
    show_list(items if as_json else [_fileset_row(f) for f in items], as_json, COLUMNS)


@app.command("show")
def show_fileset(
    ctx: typer.Context,
    fileset: FilesetArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one fileset: purpose, storage, file count, total size and digest."""
    workspace, name = _split(fileset)
    with connect(ctx, url, token) as client:
        found = client.filesets.get(workspace, name)
    _show_fileset(found, as_json)


@app.command("update")
def update_fileset(
    ctx: typer.Context,
    fileset: FilesetArgument,
    description: Annotated[str | None, typer.Option(help="The new description", show_default=False)] = None,
    purpose: PurposeOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a fileset's description or purpose (editors)."""
    workspace, name = _split(fileset)
    with connect(ctx, url, token) as client:
        updated = client.filesets.update(workspace, name, description=description, purpose=purpose)
    _show_fileset(updated, as_json)


@app.command("delete")
def delete_fileset(
    ctx: typer.Context,
    fileset: FilesetArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even while models or adapters refer to it (recorded)")
    ] = False,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a fileset and its files (editors). Refused while models or adapters refer to it, unless --force."""
    workspace, name = _split(fileset)
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"fileset '{workspace}/{name}'",
        call=lambda client: client.filesets.delete(workspace, name, force=force),
        question=f"Delete fileset '{workspace}/{name}' and every file in it?",
    )


@app.command("files")
def list_files(
    ctx: typer.Context,
    fileset: FilesetArgument,
    path: Annotated[
        str | None, typer.Option("--path", help="Only paths starting with this, e.g. weights/", show_default=False)
    ] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the files of a fileset by path, with size and sha256 (the first 12 characters; --json for all)."""
    workspace, name = _split(fileset)
    with connect(ctx, url, token) as client:
        pager = client.filesets.files(workspace, name, path, sort=sort, page_size=page_size_for(limit, page_size))
        items = take(pager, limit)
    if as_json:
        print_json(items)
        return
    rows = [{**f, "size": _size(f.get("size")), "sha256": str(f.get("sha256", ""))[:12]} for f in items]
    show_list(rows, False, FILE_COLUMNS)


@app.command("upload")
def upload(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", exists=True, help="A local directory (uploaded whole) or one file", show_default=False
        ),
    ],
    fileset: FilesetArgument,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Put the files under this directory of the fileset", show_default=False)
    ] = "",
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a directory (or one file) into a fileset. Files already there with the same path and sha256 are
    skipped, so running it again uploads only what changed."""
    workspace, name = _split(fileset)
    ref = f"{workspace}/{name}"
    with _local_errors(), connect(ctx, url, token) as client:
        if source.is_dir():
            with _progress("Uploading", ref) as bar:
                summary = client.filesets.upload_dir(source, ref, prefix, progress=bar)
            uploaded, skipped, nbytes, seconds = summary.uploaded, summary.skipped, summary.bytes, summary.seconds
        else:
            uploaded, skipped, nbytes, seconds = _upload_one(client, source, ref, prefix)
    if as_json:
        print_json(
            {
                "fileset": ref,
                "uploaded": uploaded,
                "skipped": skipped,
                "bytes": nbytes,
                "seconds": round(seconds, 3),
                "mb_per_second": _rate(nbytes, seconds),
            }
        )
    else:
        done(_summary_line("Uploaded", uploaded, nbytes, seconds, f"to {ref}", skipped))


def _upload_one(client: Client, source: Path, ref: str, prefix: str) -> tuple[int, int, int, float]:
    """(uploaded, skipped, bytes, seconds) for one file, skipped when the fileset holds the same bytes there."""
    from modelyard.client import NotFoundError
    from modelyard.client._filesets import normal_prefix, sha256_of

    started = time.monotonic()
    base = normal_prefix(prefix)
    remote = f"{base}/{source.name}" if base else source.name
    size = source.stat().st_size
    try:
        current = client.filesets.stat(ref, remote)
    except NotFoundError as exc:
        if exc.error_code != "FILE_NOT_FOUND":
            raise
    else:
        if current["size"] == size and current["sha256"] == sha256_of(source):
            return 0, 1, 0, time.monotonic() - started
    with _progress("Uploading", ref) as bar:
        client.filesets.upload_file(source, ref, remote, progress=bar)
    return 1, 0, size, time.monotonic() - started


@app.command("download")
def download(
    ctx: typer.Context,
    fileset: FilesetArgument,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to put the files (created if needed)", show_default=False)
    ],
    path: Annotated[
        str | None,
        typer.Option("--path", help="Only files whose path starts with this, e.g. weights/", show_default=False),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download a fileset's files into a directory, each at its path in the fileset. Each file is checked against
    its sha256 before it is put in place; local files that already match are skipped."""
    workspace, name = _split(fileset)
    ref = f"{workspace}/{name}"
    with _local_errors(), connect(ctx, url, token) as client, _progress("Downloading", ref) as bar:
        summary = client.filesets.download_dir(ref, directory, path or "", progress=bar)
    if as_json:
        print_json(
            {
                "fileset": ref,
                "directory": str(directory),
                "downloaded": summary.downloaded,
                "skipped": summary.skipped,
                "bytes": summary.bytes,
                "seconds": round(summary.seconds, 3),
                "mb_per_second": _rate(summary.bytes, summary.seconds),
            }
        )
    else:
        where = f"from {ref} to {directory}"
        done(_summary_line("Downloaded", summary.downloaded, summary.bytes, summary.seconds, where, summary.skipped))


@app.command("rm")
def remove_file(
    ctx: typer.Context,
    fileset: FilesetArgument,
    path: Annotated[str, typer.Argument(help="The file's path in the fileset", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete one file from a fileset (editors)."""
    workspace, name = _split(fileset)
    with connect(ctx, url, token) as client:
        client.filesets.delete_file(f"{workspace}/{name}", path)
    done(f"Deleted '{path}' from fileset '{workspace}/{name}'.")
