"""HTTP routes of filesets and their files. File bodies stream in both directions and are never held whole."""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import posixpath
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from modelyard.errors import BadRequest, PayloadTooLarge
from modelyard.fileset import paths, service
from modelyard.fileset.schemas import FileFilters, FileRead, FilesetCreate, FilesetFilters, FilesetRead, FilesetUpdate
from modelyard.fileset.tables import Fileset
from modelyard.kit.etag import etag_of, header_matches
from modelyard.kit.headers import IfMatch
from modelyard.kit.pagination import ListQuery, Page, list_params
from modelyard.kit.ranges import parse_range
from modelyard.kit.routing import STREAMED_BODY, DbSession, api_router
from modelyard.kit.schemas import read_model
from modelyard.storage import BlobStore, BlobWriter
from modelyard.workspace.dependencies import WorkspaceEditor, WorkspaceReader
from modelyard.workspace.service import WorkspaceAccess

router = api_router("/v1/workspaces/{ws}/filesets", tags=["filesets"])

WRITE_BATCH = 4 * 1024 * 1024


def _read(fileset: Fileset, ws: WorkspaceAccess) -> FilesetRead:
    return read_model(FilesetRead, fileset, workspace=ws.workspace.name)


def _store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.ctx.store
    return store


@router.post("", status_code=status.HTTP_201_CREATED)
def create_fileset(
    body: FilesetCreate, access: WorkspaceEditor, session: DbSession, request: Request, response: Response
) -> FilesetRead:
    fileset = service.create_fileset(
        session,
        access,
        name=body.name,
        description=body.description,
        purpose=body.purpose.value,
        storage=body.storage,
        store=_store(request),
    )
    response.headers["ETag"] = etag_of(fileset)
    return _read(fileset, access)


@router.get("")
def list_filesets(
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_params(FilesetFilters))],
) -> Page[FilesetRead]:
    rows, pagination, token = service.list_filesets(session, access, query)
    return Page(data=[_read(f, access) for f in rows], pagination=pagination, next_page_token=token)


@router.get("/{fs}")
def get_fileset(fs: str, access: WorkspaceReader, session: DbSession, response: Response) -> FilesetRead:
    fileset = service.get_fileset(session, access, fs)
    response.headers["ETag"] = etag_of(fileset)
    return _read(fileset, access)


@router.patch("/{fs}")
def update_fileset(
    fs: str,
    body: FilesetUpdate,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> FilesetRead:
    changes = body.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    fileset = service.update_fileset(session, access, fs, changes, if_match)
    response.headers["ETag"] = etag_of(fileset)
    return _read(fileset, access)


@router.delete("/{fs}", status_code=status.HTTP_204_NO_CONTENT)
def delete_fileset(
    fs: str,
    access: WorkspaceEditor,
    session: DbSession,
    force: Annotated[bool, Query(description="Delete even while models or adapters refer to it")] = False,
    if_match: IfMatch = None,
) -> None:
    service.delete_fileset(session, access, fs, force, if_match)


@router.get("/{fs}/files")
def list_files(
    fs: str,
    access: WorkspaceReader,
    session: DbSession,
    query: Annotated[
        ListQuery, Depends(list_params(FileFilters, sorts=("path", "created_at", "updated_at"), default_sort="path"))
    ],
) -> Page[FileRead]:
    prefix = paths.normalize_prefix(str(query.filters.get("path", "")))
    rows, pagination, token = service.list_files(session, access, fs, prefix, query)
    return Page(data=[FileRead.model_validate(f) for f in rows], pagination=pagination, next_page_token=token)


def _check_fileset_and_release(
    session: Session, access: WorkspaceAccess, fs: str, path: str, if_match: str | None, if_none_match: str | None
) -> None:
    # Fail fast, before any byte moves; commit_upload checks again once the body is in.
    service.check_upload(session, service.get_fileset(session, access, fs), path, if_match, if_none_match)
    # End the transaction before the body streams: on SQLite it would hold the write lock for the whole upload.
    session.rollback()


@router.put(
    "/{fs}/-/{path:path}",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": FileRead, "description": "Replaced an existing file"}},
    openapi_extra={
        STREAMED_BODY: True,
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def upload_file(
    fs: str,
    path: str,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", max_length=1024, description="'*': only create, never replace")
    ] = None,
) -> FileRead:
    """Upload one file as the raw request body (streamed to storage). 201 when the path is new, 200 when it
    replaced a file. `If-Match: "<sha256>"` replaces only that content; `If-None-Match: *` only creates."""
    limit = request.app.state.ctx.settings.max_upload_bytes
    normal = paths.normalize(path)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    await run_in_threadpool(_check_fileset_and_release, session, access, fs, normal, if_match, if_none_match)
    store = _store(request)
    writer = await run_in_threadpool(store.writer)
    try:
        await _stream_into(request, writer, limit)
        file, created = await run_in_threadpool(
            functools.partial(service.commit_upload, if_match=if_match, if_none_match=if_none_match),
            session,
            access,
            fs,
            normal,
            writer,
            store,
        )
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = f'"{file.sha256}"'
    return FileRead.model_validate(file)


async def _stream_into(request: Request, writer: BlobWriter, limit: int) -> None:
    """Copy the request body into the writer. Hashing and storing run in two worker threads, one batch behind
    the receiving, so the network, the hash and the disk overlap; at most two batches are in memory."""
    pending: asyncio.Future[tuple[None, None]] | None = None
    batch: list[bytes] = []
    batched = received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            batch.append(chunk)
            batched += len(chunk)
            if batched >= WRITE_BATCH:
                data = b"".join(batch)
                batch.clear()
                batched = 0
                if pending is not None:
                    await pending
                pending = asyncio.gather(
                    run_in_threadpool(writer.hash_part, data), run_in_threadpool(writer.store_part, data)
                )
        if pending is not None:
            await pending
            pending = None
        if batch:
            await run_in_threadpool(writer.write, b"".join(batch))
        await run_in_threadpool(writer.finish)
    except ClientDisconnect as exc:
        raise BadRequest("The client disconnected before the upload finished", error_code="UPLOAD_INTERRUPTED") from exc
    finally:
        if pending is not None:
            # Let the write in flight end before the caller aborts the writer (closing the file under it).
            await asyncio.gather(pending, return_exceptions=True)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than {limit} bytes",
        error_code="UPLOAD_TOO_LARGE",
        solution_msg="Split the file, or raise MODELYARD_MAX_UPLOAD_BYTES on the server",
    )


_DOWNLOAD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/octet-stream": {}}},
    206: {"description": "Partial content"},
    304: {"description": "Not modified"},
    416: {"description": "Range not satisfiable"},
}


@router.get("/{fs}/-/{path:path}", response_class=StreamingResponse, responses=_DOWNLOAD_RESPONSES)
def download_file(fs: str, path: str, request: Request, access: WorkspaceReader, session: DbSession) -> Response:
    """Stream one file back, with `ETag` (its sha256), `Content-Length` and `Range` support."""
    return _serve_file(fs, path, request, access, session, body=True)


@router.head("/{fs}/-/{path:path}", responses=_DOWNLOAD_RESPONSES)
def head_file(fs: str, path: str, request: Request, access: WorkspaceReader, session: DbSession) -> Response:
    """The headers `GET` would answer (size, sha256 ETag), without the body."""
    return _serve_file(fs, path, request, access, session, body=False)


def _serve_file(
    fs: str, path: str, request: Request, access: WorkspaceAccess, session: Session, *, body: bool
) -> Response:
    file = service.get_file(session, access, fs, paths.normalize(path))
    etag = f'"{file.sha256}"'
    name = posixpath.basename(file.path)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Last-Modified": file.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and header_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    byte_range = parse_range(request.headers.get("range"), file.size)
    if byte_range is None:
        first, last, code = 0, file.size - 1, status.HTTP_200_OK
    else:
        first, last = byte_range
        code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {first}-{last}/{file.size}"
    headers["Content-Length"] = str(max(0, last - first + 1))
    if not body or file.size == 0:
        return Response(status_code=code, headers=headers)
    return StreamingResponse(_store(request).read(file.sha256, first, last), status_code=code, headers=headers)


@router.delete("/{fs}/-/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(fs: str, path: str, access: WorkspaceEditor, session: DbSession, if_match: IfMatch = None) -> None:
    service.delete_file(session, access, fs, paths.normalize(path), if_match)
