"""Hugging Face repositories as model sources: `hf://org/name@revision` resolved to one commit, and its files read
by byte range or streamed, always at that commit so a branch that moves meanwhile changes nothing.

Metadata goes through `huggingface_hub` (`HfApi.model_info`); file bytes go through httpx on the Hub's resolve URL
(`hf_hub_url`) pinned to the commit sha, which is what `hf_hub_download` requests too, minus the local cache. The
endpoint is the `endpoint` argument, else `HF_ENDPOINT` read at call time, else huggingface.co; the token is the
`token` argument, else `HF_TOKEN`, else none (a token saved by `hf auth login` on the server is never used).
Every failure is an `InspectError` naming the repository, revision or file; `HubUnavailableError` when retrying
later may help.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.utils._headers import build_hf_headers

try:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
except ImportError:  # huggingface_hub < 0.25 kept its errors in utils
    from huggingface_hub.utils import (  # type: ignore[attr-defined]
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

from modelyard import __version__
from modelyard.inspect.errors import HubUnavailableError, InspectError
from modelyard.inspect.safetensors import RangeReader

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_REVISION: Final = "main"
CHUNK_SIZE: Final = 1024 * 1024

# Reading past this offset of a file whose server ignores Range would mean downloading everything before it.
_MAX_SKIP_WITHOUT_RANGE: Final = 16 * 1024 * 1024

_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?")
_REVISION = re.compile(r"[A-Za-z0-9_.\-/]+")
_SHA = re.compile(r"[0-9a-f]{40}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int | None
    sha256: str | None
    """Set for files stored with Git LFS (weights); None for small files kept in git (configs, tokenizers)."""


@dataclass(frozen=True)
class HubSnapshot:
    repo_id: str
    revision: str
    """The revision as asked for: a branch, a tag or a commit sha."""
    commit_sha: str
    """The commit `revision` resolved to; every read is pinned to it."""
    files: list[HubFile]
    endpoint: str

    @property
    def uri(self) -> str:
        return f"hf://{self.repo_id}@{self.commit_sha}"

    def file(self, path: str) -> HubFile | None:
        return next((f for f in self.files if f.path == path), None)


def parse_hf_uri(uri: str) -> tuple[str, str]:
    """`hf://org/name[@revision]` -> (repo_id, revision), the revision "main" when absent; ValueError otherwise."""
    if not isinstance(uri, str) or not uri.startswith("hf://"):
        raise ValueError(f"A Hugging Face path looks like hf://org/name or hf://org/name@revision, not {uri!r}")
    repo_id, at, revision = uri[len("hf://") :].partition("@")
    check_repo_id(repo_id, uri=uri)
    if not at:
        return repo_id, DEFAULT_REVISION
    if (
        not revision
        or len(revision) > 255
        or not _REVISION.fullmatch(revision)
        or ".." in revision
        or "//" in revision
        or revision.startswith("/")
        or revision.endswith(("/", ".lock"))
    ):
        raise ValueError(
            f"In {uri!r}, {revision!r} is not a revision: after '@' give a branch, a tag or a commit sha "
            "(letters, digits, '.', '_', '-', '/')"
        )
    return repo_id, revision


def check_repo_id(repo_id: str, *, uri: str | None = None) -> str:
    """Raise ValueError unless `repo_id` is a Hub repository id `org/name`."""
    parts = repo_id.split("/")
    if (
        len(parts) != 2
        or len(repo_id) > 96
        or not all(_REPO_PART.fullmatch(p) for p in parts)
        or "--" in repo_id
        or ".." in repo_id
    ):
        where = f"In {uri!r}, " if uri else ""
        raise ValueError(
            f"{where}{repo_id!r} is not a Hugging Face repository id: expected 'org/name' (letters, digits, '_', "
            "'-', '.'; at most 96 characters)"
        )
    return repo_id


def hub_endpoint(endpoint: str | None = None) -> str:
    """The Hub to talk to: `endpoint`, else `HF_ENDPOINT` as set now, else huggingface.co."""
    url = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InspectError(
            f"The Hugging Face endpoint must be an http:// or https:// URL, not {url!r} (see HF_ENDPOINT)"
        )
    return url


def resolve(
    repo_id: str,
    revision: str = DEFAULT_REVISION,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HubSnapshot:
    """Ask the Hub which commit `revision` of the model repository `repo_id` is, and list its files at that commit."""
    check_repo_id(repo_id)
    url = hub_endpoint(endpoint)
    where = f"Hugging Face repository '{repo_id}' at revision '{revision}'"
    api = HfApi(endpoint=url, token=_token(token) or False)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout)
    except GatedRepoError as exc:
        raise InspectError(_gated_message(repo_id)) from exc
    except RevisionNotFoundError as exc:
        raise InspectError(f"Revision '{revision}' not found in Hugging Face repository '{repo_id}' ({url})") from exc
    except RepositoryNotFoundError as exc:
        raise InspectError(
            f"Hugging Face repository '{repo_id}' not found at {url}; if it is private, set HF_TOKEN to a token "
            "that can read it"
        ) from exc
    except OfflineModeIsEnabled as exc:
        raise InspectError(f"Cannot resolve {where}: HF_HUB_OFFLINE is set on this server") from exc
    except HfHubHTTPError as exc:
        raise _http_error(where, getattr(exc.response, "status_code", None), exc) from exc
    except _TRANSPORT_ERRORS as exc:
        raise HubUnavailableError(f"Could not reach the Hugging Face Hub at {url} to resolve {where}: {exc}") from exc

    sha = info.sha
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise InspectError(f"The Hub at {url} answered no commit sha for {where}")
    if _SHA.fullmatch(revision) and sha != revision:
        raise InspectError(f"The Hub at {url} resolved commit {revision} of '{repo_id}' to another commit, {sha}")
    if getattr(info, "disabled", False):
        raise InspectError(f"Hugging Face repository '{repo_id}' has been disabled on the Hub")
    if info.siblings is None:
        raise InspectError(f"The Hub at {url} did not list the files of {where}")
    files = [_hub_file(s) for s in info.siblings]
    return HubSnapshot(repo_id=repo_id, revision=revision, commit_sha=sha, files=files, endpoint=url)


def client(*, timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """An httpx client for `read_range` and `open_file` to share connections; close it when done."""
    return httpx.Client(follow_redirects=True, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


def read_range(
    snapshot: HubSnapshot,
    path: str,
    start: int,
    length: int,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    http: httpx.Client | None = None,
) -> bytes:
    """At most `length` bytes of `path` from byte `start`, at the snapshot's commit (fewer only at the file's end)."""
    if start < 0 or length < 0:
        raise ValueError(f"read_range needs start >= 0 and length >= 0, not {start} and {length}")
    if length == 0:
        return b""
    headers = {"Range": f"bytes={start}-{start + length - 1}"}
    with _get(snapshot, path, headers, token=token, timeout=timeout, http=http) as response:
        if response.status_code == 416:
            return b""
        skip = 0
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
            if match is None or int(match.group(1)) != start:
                raise InspectError(
                    f"The Hub answered a different byte range than asked ({response.headers.get('content-range')!r} "
                    f"for bytes {start}-{start + length - 1}) when reading '{path}' from {_where(snapshot)}"
                )
        elif start > _MAX_SKIP_WITHOUT_RANGE:
            raise InspectError(
                f"The server at {snapshot.endpoint} ignores HTTP range requests: cannot read bytes {start}+ of "
                f"'{path}' from {_where(snapshot)} without downloading the whole file"
            )
        else:
            skip = start
        return _collect(response, skip, length, snapshot, path)


def range_reader(
    snapshot: HubSnapshot,
    path: str,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    http: httpx.Client | None = None,
) -> RangeReader:
    """`read_range` bound to one file, for `parse_header(range_reader(snap, p), size, name=p)`."""

    def read(start: int, length: int) -> bytes:
        return read_range(snapshot, path, start, length, token=token, timeout=timeout, http=http)

    return read


def open_file(
    snapshot: HubSnapshot,
    path: str,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    http: httpx.Client | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> AbstractContextManager[Iterator[bytes]]:
    """Stream `path` at the snapshot's commit: `with open_file(snap, "config.json") as chunks: for c in chunks: ...`.

    The whole file is never held in memory; the connection is closed when the block ends.
    """
    return _open(snapshot, path, token=token, timeout=timeout, http=http, chunk_size=chunk_size)


def file_sha256(
    snapshot: HubSnapshot,
    path: str,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    http: httpx.Client | None = None,
) -> tuple[int, str]:
    """(size, sha256 hex) of `path` at the snapshot's commit, streamed; use `HubFile.sha256` for LFS files instead."""
    digest = hashlib.sha256()
    size = 0
    with open_file(snapshot, path, token=token, timeout=timeout, http=http) as chunks:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextmanager
def _open(
    snapshot: HubSnapshot,
    path: str,
    *,
    token: str | None,
    timeout: float,
    http: httpx.Client | None,
    chunk_size: int,
) -> Iterator[Iterator[bytes]]:
    with _get(snapshot, path, {}, token=token, timeout=timeout, http=http) as response:
        yield _chunks(response, snapshot, path, chunk_size)


def _chunks(response: httpx.Response, snapshot: HubSnapshot, path: str, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.HTTPError as exc:
        raise HubUnavailableError(f"Reading '{path}' from {_where(snapshot)} failed: {exc}") from exc


@contextmanager
def _get(
    snapshot: HubSnapshot,
    path: str,
    extra_headers: dict[str, str],
    *,
    token: str | None,
    timeout: float,
    http: httpx.Client | None,
) -> Iterator[httpx.Response]:
    url = hf_hub_url(snapshot.repo_id, path, revision=snapshot.commit_sha, endpoint=snapshot.endpoint)
    headers = build_hf_headers(token=_token(token) or False, library_name="modelyard", library_version=__version__)
    # Compression would make byte ranges and sizes refer to the encoded body, not the file.
    headers["Accept-Encoding"] = "identity"
    headers.update(extra_headers)
    own = http is None
    session = client(timeout=timeout) if http is None else http
    try:
        with session.stream("GET", url, headers=headers, timeout=timeout) as response:
            if response.status_code not in (200, 206, 416):
                response.read()
                raise _response_error(response, snapshot, path)
            _check_commit(response, snapshot, path)
            yield response
    except httpx.HTTPError as exc:
        raise HubUnavailableError(
            f"Could not reach the Hugging Face Hub at {snapshot.endpoint} to read '{path}' from {_where(snapshot)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if own:
            session.close()


def _collect(response: httpx.Response, skip: int, length: int, snapshot: HubSnapshot, path: str) -> bytes:
    parts: list[bytes] = []
    wanted = length
    try:
        for chunk in response.iter_bytes(CHUNK_SIZE):
            if skip:
                dropped = min(skip, len(chunk))
                chunk = chunk[dropped:]
                skip -= dropped
            if chunk:
                parts.append(chunk[:wanted])
                wanted -= len(parts[-1])
            if wanted <= 0:
                break
    except httpx.HTTPError as exc:
        raise HubUnavailableError(f"Reading '{path}' from {_where(snapshot)} failed: {exc}") from exc
    return b"".join(parts)


def _check_commit(response: httpx.Response, snapshot: HubSnapshot, path: str) -> None:
    # The Hub names the commit it served on its own answer; after a redirect to a CDN it is on the first hop.
    first = response.history[0] if response.history else response
    served = first.headers.get("x-repo-commit")
    if served is not None and served != snapshot.commit_sha:
        raise InspectError(
            f"The Hub served '{path}' of '{snapshot.repo_id}' from commit {served}, not the pinned commit "
            f"{snapshot.commit_sha}"
        )


def _response_error(response: httpx.Response, snapshot: HubSnapshot, path: str) -> InspectError:
    code = response.headers.get("x-error-code")
    repo = snapshot.repo_id
    if code == "EntryNotFound":
        return InspectError(
            f"File '{path}' not found in Hugging Face repository '{repo}' at commit {snapshot.commit_sha}"
        )
    if code == "RevisionNotFound":
        return InspectError(f"Commit {snapshot.commit_sha} not found in Hugging Face repository '{repo}'")
    if code == "GatedRepo":
        return InspectError(_gated_message(repo))
    if code == "RepoNotFound":
        return InspectError(
            f"Hugging Face repository '{repo}' not found at {snapshot.endpoint}; if it is private, set HF_TOKEN to a "
            "token that can read it"
        )
    return _http_error(f"'{path}' in {_where(snapshot)}", response.status_code, response.headers.get("x-error-message"))


def _http_error(what: str, status: int | None, detail: object) -> InspectError:
    if status in (401, 403):
        return InspectError(
            f"The Hugging Face Hub refused access to {what} ({status}): set HF_TOKEN to a token that can read it"
        )
    if status == 404:
        return InspectError(f"The Hugging Face Hub has no {what} (404)")
    message = f"The Hugging Face Hub answered {status} for {what}" + (f": {detail}" if detail else "")
    if status is None or status == 429 or status >= 500:
        return HubUnavailableError(message)
    return InspectError(message)


def _gated_message(repo_id: str) -> str:
    return (
        f"Hugging Face repository '{repo_id}' is gated: accept its conditions on the Hub with an account, then set "
        "HF_TOKEN to a token of that account"
    )


def _where(snapshot: HubSnapshot) -> str:
    return f"Hugging Face repository '{snapshot.repo_id}' at commit {snapshot.commit_sha}"


def _hub_file(sibling: Any) -> HubFile:
    lfs = sibling.lfs
    if lfs is not None:
        return HubFile(path=sibling.rfilename, size=int(lfs.size), sha256=str(lfs.sha256))
    size = sibling.size
    return HubFile(path=sibling.rfilename, size=int(size) if size is not None else None, sha256=None)


def _token(token: str | None) -> str | None:
    return token or os.environ.get("HF_TOKEN") or None


def _transport_errors() -> tuple[type[BaseException], ...]:
    # huggingface_hub talks through requests (< 1.0, whose errors are OSErrors), httpx (1.x) or httpx2 (2.x).
    errors: list[type[BaseException]] = [OSError, httpx.HTTPError]
    try:
        import httpx2
    except ImportError:
        pass
    else:
        errors.append(httpx2.HTTPError)
    return tuple(errors)


_TRANSPORT_ERRORS: Final = _transport_errors()
