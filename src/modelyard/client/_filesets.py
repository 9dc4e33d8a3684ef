"""`client.filesets`: filesets and the files in them. File bodies stream both ways in chunks of `CHUNK_SIZE` and are
never held whole in memory. A download lands in a temporary file next to its destination, is checked against the
sha256 the server listed, and only then is renamed into place, so an interrupted download never leaves half a file."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx

from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._pager import Pager
from modelyard.client.errors import ChecksumMismatchError, ModelyardError, UnsafePathError

CHUNK_SIZE = 1024 * 1024
LISTING_PAGE_SIZE = 1000

TransferEventKind = Literal["skipped", "start", "file_start", "bytes", "file_done"]


@dataclass(frozen=True)
class TransferEvent:
    """What a transfer reports to its `progress` callback, in this order:

    - `skipped` (`path`, `size`): a file that is already identical at the destination; not transferred;
    - `start` (`files_total`, `bytes_total`): what will be transferred, once, before the first byte;
    - `file_start` (`path`, `size`), then `bytes` (`path`, `bytes`: how many were just sent or received) as the bytes
      move, then `file_done` (`path`, `size`), for each file in turn.

    `path` is always the file's path inside the fileset.
    """

    kind: TransferEventKind
    path: str = ""
    size: int = 0
    bytes: int = 0
    files_total: int = 0
    bytes_total: int = 0


ProgressCallback = Callable[[TransferEvent], None]


@dataclass(frozen=True)
class UploadSummary:
    """What `upload_dir` did: files uploaded and skipped (already identical), bytes sent, and the seconds it took."""

    fileset: str
    uploaded: int
    skipped: int
    bytes: int
    seconds: float
    files: tuple[Resource, ...] = ()
    """The server's answer {path, size, sha256, created_at, updated_at} for each uploaded file."""

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class DownloadSummary:
    """What `download_dir` did: files downloaded and skipped (already identical), bytes received, and the seconds
    it took."""

    fileset: str
    directory: Path
    downloaded: int
    skipped: int
    bytes: int
    seconds: float
    paths: tuple[Path, ...] = ()
    """The local files written."""

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def split_fileset(ref: str) -> tuple[str, str]:
    """'workspace/name' as (workspace, name): exactly one '/', with a non-empty part on each side."""
    if not isinstance(ref, str) or ref.count("/") != 1:
        raise ValueError(f"Expected a fileset as 'workspace/name' (e.g. 'default/llama-weights'), got {ref!r}")
    workspace, name = ref.split("/")
    if not workspace or not name:
        raise ValueError(f"Expected a fileset as 'workspace/name' (e.g. 'default/llama-weights'), got {ref!r}")
    return workspace, name


def _fileset_path(workspace: str, name: str) -> str:
    return f"/v1/workspaces/{segment(workspace)}/filesets/{segment(name)}"


def _file_path(workspace: str, name: str, path: str) -> str:
    # Each segment is encoded on its own ('.' and '..' too), so that neither httpx nor a proxy folds dot segments:
    # the server sees the path as given and decides whether it is valid.
    return f"{_fileset_path(workspace, name)}/-/" + "/".join(segment(part) for part in path.split("/"))


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def normal_prefix(prefix: str) -> str:
    """A remote directory prefix without leading or trailing '/' and without '.' or empty segments ('' for none);
    '..' is left for the server to refuse."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    normal = posixpath.normpath(stripped)
    return "" if normal == "." else normal


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _strip_etag(etag: str | None) -> str:
    return (etag or "").removeprefix("W/").strip('"')


def _local_files(root: Path) -> list[tuple[Path, str]]:
    """Every regular file under root (following links to files, not to directories) with its relative POSIX path,
    in path order."""
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            local = Path(dirpath, filename)
            if local.is_file():
                found.append((local, local.relative_to(root).as_posix()))
    found.sort(key=lambda item: item[1])
    return found


def _unsafe(path: str, reason: str) -> UnsafePathError:
    return UnsafePathError(
        f"Refusing to download {path!r}: {reason}",
        error_code="UNSAFE_PATH",
        solution_msg="Nothing was downloaded; download the other files with a narrower path prefix",
    )


def _local_target(base: Path, path: str) -> Path:
    """Where the remote `path` goes under the (resolved) directory `base`, refusing anything that would leave it,
    including through a symbolic link already in the directory."""
    parts = path.split("/")
    if not path or path.startswith("/"):
        raise _unsafe(path, "it is empty or absolute")
    if any(part in ("", ".", "..") for part in parts):
        raise _unsafe(path, "it has an empty, '.' or '..' segment")
    if "\\" in path or "\x00" in path:
        raise _unsafe(path, "it contains a backslash or NUL")
    target = base.joinpath(*parts)
    if not target.resolve().is_relative_to(base):
        raise _unsafe(path, f"it would be written outside {base}")
    return target


def _check_no_file_dir_clash(paths: list[str]) -> None:
    """A fileset may hold both 'a' and 'a/b'; a directory cannot."""
    files = set(paths)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise _unsafe(path, f"'{parent}' is a file in the fileset, so it cannot be a directory here")


class Filesets:
    """`/v1/workspaces/{ws}/filesets`: filesets (purpose model, dataset or generic) and their files.

    Methods about the fileset itself take the workspace and the name apart; file transfers take the fileset as one
    'workspace/name' string (a `ValueError` if it is not exactly that). A `progress` callback receives a
    `TransferEvent` for each step of a transfer."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport

    # --- the filesets -------------------------------------------------------------------------------------------

    def create(
        self,
        workspace: str,
        name: str,
        description: str = "",
        purpose: str = "generic",
        storage: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Resource:
        """A new, empty fileset. `purpose`: model, dataset or generic; `storage`: local or s3 (default: the server's
        store; naming another is a 400)."""
        body: dict[str, Any] = {"name": name, "description": description, "purpose": purpose}
        if storage is not None:
            body["storage"] = storage
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._http.request("POST", f"/v1/workspaces/{segment(workspace)}/filesets", json=body, headers=headers)

    def list(
        self,
        workspace: str,
        *,
        purpose: str | None = None,
        storage: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        params = {"purpose": purpose, "storage": storage, "name_prefix": name_prefix, "sort": sort, **filters}
        return Pager(self._http, f"/v1/workspaces/{segment(workspace)}/filesets", params, page_size)

    def get(self, workspace: str, name: str) -> Resource:
        """The fileset with `file_count`, `total_size` and `digest` (the sha256 of its sorted manifest)."""
        return self._http.request("GET", _fileset_path(workspace, name))

    def update(
        self,
        workspace: str,
        name: str,
        *,
        description: str | None = None,
        purpose: str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None); `if_match` is an ETag from `get()` (412 if it changed since)."""
        body = {k: v for k, v in {"description": description, "purpose": purpose}.items() if v is not None}
        headers = {"If-Match": if_match} if if_match is not None else {}
        return self._http.request("PATCH", _fileset_path(workspace, name), json=body, headers=headers)

    def delete(self, workspace: str, name: str, *, force: bool = False, if_match: str | None = None) -> None:
        """Delete the fileset and its files; refused (409) while models or adapters refer to it, unless `force`."""
        params = {"force": True} if force else None
        headers = {"If-Match": if_match} if if_match is not None else {}
        self._http.send("DELETE", _fileset_path(workspace, name), params=params, headers=headers)

    def files(
        self,
        workspace: str,
        name: str,
        path: str | None = None,
        *,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Pager:
        """The files {path, size, sha256, created_at, updated_at}, by path; `path` keeps those starting with it."""
        params = {"path": path or None, "sort": sort}
        return Pager(self._http, f"{_fileset_path(workspace, name)}/files", params, page_size)

    # --- one file -----------------------------------------------------------------------------------------------

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        fileset: str,
        remote_path: str | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> Resource:
        """Upload one local file to `remote_path` (default: its file name), replacing any file there; streamed
        from disk. Answers {path, size, sha256, created_at, updated_at}, the sha256 checked against the bytes sent."""
        workspace, name = split_fileset(fileset)
        local = Path(local_path)
        remote = remote_path if remote_path is not None else local.name
        size = local.stat().st_size
        if progress:
            progress(TransferEvent("start", files_total=1, bytes_total=size))
        return self._put(local, workspace, name, remote, size, progress)

    def stat(self, fileset: str, path: str) -> Resource:
        """{path, size, sha256} of one file, from a HEAD request (no body is transferred)."""
        workspace, name = split_fileset(fileset)
        url = _file_path(workspace, name, path)
        try:
            response = self._http.send("HEAD", url)
        except ModelyardError as exc:
            if exc.status_code is not None and exc.error_code.startswith("HTTP_"):
                # An answer to HEAD has no body; ask with GET for the server's error (which fileset, which file).
                self._http.send("GET", url, stream=True).close()  # the body is never read
            raise
        etag = response.headers.get("etag")
        size = int(response.headers.get("content-length", "0"))
        return Resource({"path": path, "size": size, "sha256": _strip_etag(etag)}, etag)

    def open(self, fileset: str, path: str) -> RemoteFile:
        """A readable binary stream of one file, fetched as it is read (a context manager; close it). It is
        seekable: a seek asks the server for the rest of the file from there (an HTTP Range request). Read from the
        start to the end without seeking, the bytes are checked against the file's sha256 at the end."""
        workspace, name = split_fileset(fileset)
        raw = _RemoteRaw(self._http, _file_path(workspace, name, path), path)
        return RemoteFile(raw)

    def delete_file(self, fileset: str, path: str) -> None:
        workspace, name = split_fileset(fileset)
        self._http.send("DELETE", _file_path(workspace, name, path))

    # --- directories --------------------------------------------------------------------------------------------

    def upload_dir(
        self,
        local_dir: str | os.PathLike[str],
        fileset: str,
        prefix: str = "",
        *,
        progress: ProgressCallback | None = None,
    ) -> UploadSummary:
        """Upload every file under `local_dir` (following links to files, not to directories), each to
        `prefix/<its path relative to local_dir>`. A file whose path, size and sha256 already match the fileset's
        listing is skipped; the others are uploaded one at a time, streamed from disk. Files in the fileset that are
        not in the directory are left alone."""
        workspace, name = split_fileset(fileset)
        root = Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"Not a directory: {root}")
        started = time.monotonic()
        base = normal_prefix(prefix)
        remote = {
            entry["path"]: entry
            for entry in self.files(workspace, name, base + "/" if base else None, page_size=LISTING_PAGE_SIZE)
        }
        pending: list[tuple[Path, str, int]] = []
        skipped = 0
        for local, relative in _local_files(root):
            path = _join(base, relative)
            size = local.stat().st_size
            entry = remote.get(path)
            if entry is not None and entry.get("size") == size and entry.get("sha256") == sha256_of(local):
                skipped += 1
                if progress:
                    progress(TransferEvent("skipped", path=path, size=size))
            else:
                pending.append((local, path, size))
        if progress:
            progress(TransferEvent("start", files_total=len(pending), bytes_total=sum(s for _l, _p, s in pending)))
        answers = tuple(self._put(local, workspace, name, path, size, progress) for local, path, size in pending)
        return UploadSummary(
            fileset=f"{workspace}/{name}",
            uploaded=len(answers),
            skipped=skipped,
            bytes=sum(int(a.get("size", 0)) for a in answers),
            seconds=time.monotonic() - started,
            files=answers,
        )

    def download_dir(
        self,
        fileset: str,
        local_dir: str | os.PathLike[str],
        path_prefix: str = "",
        *,
        progress: ProgressCallback | None = None,
    ) -> DownloadSummary:
        """Download the fileset's files (those whose path starts with `path_prefix`) into `local_dir`, each at its
        path in the fileset, creating directories as needed. Every path is checked before anything is written: one
        that would land outside `local_dir` is an `UnsafePathError`. A local file whose size and sha256 already match
        is skipped; each other file streams into a temporary file next to its destination, is checked against the
        listed sha256 (`ChecksumMismatchError`) and is renamed into place."""
        workspace, name = split_fileset(fileset)
        started = time.monotonic()
        entries = [dict(e) for e in self.files(workspace, name, path_prefix or None, page_size=LISTING_PAGE_SIZE)]
        root = Path(local_dir)
        root.mkdir(parents=True, exist_ok=True)
        base = root.resolve()
        _check_no_file_dir_clash([str(e["path"]) for e in entries])
        planned = [(entry, _local_target(base, str(entry["path"]))) for entry in entries]
        pending: list[tuple[dict[str, Any], Path]] = []
        skipped = 0
        for entry, target in planned:
            size = int(entry["size"])
            if target.is_file() and target.stat().st_size == size and sha256_of(target) == entry["sha256"]:
                skipped += 1
                if progress:
                    progress(TransferEvent("skipped", path=entry["path"], size=size))
            else:
                pending.append((entry, target))
        if progress:
            total = sum(int(entry["size"]) for entry, _target in pending)
            progress(TransferEvent("start", files_total=len(pending), bytes_total=total))
        written: list[Path] = []
        received = 0
        for entry, target in pending:
            received += self._get(workspace, name, entry, target, progress)
            written.append(target)
        return DownloadSummary(
            fileset=f"{workspace}/{name}",
            directory=root,
            downloaded=len(written),
            skipped=skipped,
            bytes=received,
            seconds=time.monotonic() - started,
            paths=tuple(written),
        )

    # --- the transfers ------------------------------------------------------------------------------------------

    def _put(
        self, local: Path, workspace: str, name: str, path: str, size: int, progress: ProgressCallback | None
    ) -> Resource:
        digest = hashlib.sha256()

        def body() -> Iterator[bytes]:
            # Exactly `size` bytes, as the Content-Length promised: a file that grew or shrank since is an error.
            remaining = size
            with local.open("rb") as handle:
                while remaining:
                    chunk = handle.read(min(CHUNK_SIZE, remaining))
                    if not chunk:
                        raise _changed(local, "it shrank while it was being uploaded")
                    remaining -= len(chunk)
                    digest.update(chunk)
                    if progress:
                        progress(TransferEvent("bytes", path=path, bytes=len(chunk)))
                    yield chunk
                if handle.read(1):
                    raise _changed(local, "it grew while it was being uploaded")

        if progress:
            progress(TransferEvent("file_start", path=path, size=size))
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        answer = self._http.request("PUT", _file_path(workspace, name, path), content=body(), headers=headers)
        if answer.get("sha256") != digest.hexdigest() or answer.get("size") != size:
            raise ChecksumMismatchError(
                f"The server stored {answer.get('size')} bytes with sha256 {answer.get('sha256')} for {path!r}, "
                f"but {size} bytes with sha256 {digest.hexdigest()} were sent",
                error_code="CHECKSUM_MISMATCH",
                solution_msg="Upload the file again",
            )
        if progress:
            progress(TransferEvent("file_done", path=path, size=size))
        return answer

    def _get(
        self, workspace: str, name: str, entry: dict[str, Any], target: Path, progress: ProgressCallback | None
    ) -> int:
        path, size, expected = str(entry["path"]), int(entry["size"]), str(entry["sha256"])
        if progress:
            progress(TransferEvent("file_start", path=path, size=size))
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".modelyard-{secrets.token_hex(8)}.part"
        url = _file_path(workspace, name, path)
        digest = hashlib.sha256()
        received = 0
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                response = self._http.send("GET", url, stream=True)
                try:
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        handle.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if progress:
                            progress(TransferEvent("bytes", path=path, bytes=len(chunk)))
                except httpx.RequestError as exc:
                    raise self._http.transport_error("GET", url, exc) from exc
                finally:
                    response.close()
            if digest.hexdigest() != expected or received != size:
                raise ChecksumMismatchError(
                    f"{path!r}: received {received} bytes with sha256 {digest.hexdigest()}, but the fileset lists "
                    f"{size} bytes with sha256 {expected}",
                    error_code="CHECKSUM_MISMATCH",
                    solution_msg="The file may have changed on the server during the download; download again",
                )
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if progress:
            progress(TransferEvent("file_done", path=path, size=size))
        return received


def _changed(local: Path, reason: str) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        f"{local}: {reason}",
        error_code="CHECKSUM_MISMATCH",
        solution_msg="Upload it again once nothing writes to it any more",
    )


class _RemoteRaw(io.RawIOBase):
    """The raw stream under `RemoteFile`: one streamed GET, and a Range GET from the new position after a seek."""

    def __init__(self, transport: HTTPTransport, url: str, path: str) -> None:
        super().__init__()
        self._http = transport
        self._url = url
        self.name = path
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._pending = memoryview(b"")
        self._pos = 0
        self._digest: Any = hashlib.sha256()  # None once a seek makes the read incomplete
        self.etag: str = ""
        # Errors (no such file) surface when the file is opened, not at the first read.
        response = self._open_at(0)
        self.etag = response.headers.get("etag", "")
        self.sha256: str = _strip_etag(self.etag)
        self.size: int = int(response.headers.get("content-length", "0"))

    def _open_at(self, position: int) -> httpx.Response:
        headers = {"Range": f"bytes={position}-"} if position else None
        response = self._http.send("GET", self._url, headers=headers, stream=True)
        if self.etag and response.headers.get("etag") != self.etag:  # a reopening after a seek
            response.close()
            raise ChecksumMismatchError(
                f"{self.name!r} changed on the server while it was open",
                error_code="CHECKSUM_MISMATCH",
                solution_msg="Open it again",
            )
        self._response = response
        self._chunks = response.iter_bytes(CHUNK_SIZE)
        if position and response.status_code != 206:
            self._skip(position)  # something between us and the server dropped the Range: read up to there
        return response

    def _skip(self, count: int) -> None:
        while count:
            chunk = self._next_chunk()
            if len(chunk) > count:
                self._pending = memoryview(chunk)[count:]
                return
            count -= len(chunk)

    def _next_chunk(self) -> bytes:
        try:
            return next(cast(Iterator[bytes], self._chunks))
        except StopIteration:
            raise ModelyardError(
                f"{self.name!r}: the server ended the download before byte {self._pos} of {self.size}",
                error_code="TRANSFER_INCOMPLETE",
                solution_msg="Open the file again",
            ) from None
        except httpx.RequestError as exc:
            raise self._http.transport_error("GET", self._url, exc) from exc

    def _drop_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if self._pos >= self.size:
            return 0
        if self._chunks is None:
            self._open_at(self._pos)
        while not self._pending:
            self._pending = memoryview(self._next_chunk())
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        if self._digest is not None:
            self._digest.update(self._pending[:n])
        self._pending = self._pending[n:]
        self._pos += n
        if self._pos >= self.size:
            self._drop_response()  # give the connection back at the end
        if self._pos >= self.size and self._digest is not None and self._digest.hexdigest() != self.sha256:
            raise ChecksumMismatchError(
                f"{self.name!r}: the bytes read do not match the file's sha256 {self.sha256}",
                error_code="CHECKSUM_MISMATCH",
                solution_msg="Open the file again",
            )
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._pos:
            self._drop_response()
            self._digest = hashlib.sha256() if position == 0 else None
            self._pos = position
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._drop_response()
        super().close()


class RemoteFile(io.BufferedReader):
    """A file of a fileset opened for reading (`client.filesets.open()`): a buffered, seekable binary stream
    with the file's `path`, `size` and `sha256`. Close it, or use it as a context manager."""

    def __init__(self, raw: _RemoteRaw) -> None:
        super().__init__(raw, buffer_size=CHUNK_SIZE)
        self._remote = raw

    @property
    def path(self) -> str:
        return self._remote.name

    @property
    def size(self) -> int:
        return self._remote.size

    @property
    def sha256(self) -> str:
        return self._remote.sha256

    def __repr__(self) -> str:
        return f"<RemoteFile path={self.path!r} size={self.size}>"
