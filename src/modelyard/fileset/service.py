"""Filesets and their files. Uploads stream into a temporary object (in the endpoint, outside any transaction);
`commit_upload` then places the blob under its hash and records the file, its event and the new fileset digest in
one transaction. Blobs no file points at any more are removed later by `collect_garbage`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.db.base import utcnow
from modelyard.db.engine import Database
from modelyard.db.unique import insert_unique
from modelyard.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from modelyard.event import service as events
from modelyard.fileset import repository
from modelyard.fileset.tables import Fileset, FilesetFile
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match, header_matches
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.storage import BlobStore, BlobWriter
from modelyard.workspace.service import WorkspaceAccess, register_resource_counter

log = logging.getLogger("modelyard.fileset")

EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()
GC_GRACE_SECONDS = 3600

# Domains whose resources point at filesets (model versions, adapters) register a function naming the resources
# that refer to a fileset, so it is not deleted from under them (unless force).
ReferenceChecker = Callable[[Session, Fileset], list[str]]
REFERENCE_CHECKERS: list[ReferenceChecker] = []


def register_reference_checker(checker: ReferenceChecker) -> ReferenceChecker:
    REFERENCE_CHECKERS.append(checker)
    return checker


@register_resource_counter
def _count_filesets(session: Session, workspace_id: str) -> dict[str, int]:
    return {"filesets": repository.count_in_workspace(session, workspace_id)}


def not_found(workspace: str, name: str) -> NotFound:
    return NotFound(
        f"Fileset '{workspace}/{name}' not found in workspace '{workspace}'",
        error_code="FILESET_NOT_FOUND",
        solution_msg=f"List the filesets with GET /v1/workspaces/{workspace}/filesets",
    )


def get_fileset(session: Session, ws: WorkspaceAccess, name: str) -> Fileset:
    fileset = repository.get_fileset(session, ws.workspace.id, name)
    if fileset is None:
        raise not_found(ws.workspace.name, name)
    return fileset


def _record(session: Session, ws: WorkspaceAccess, action: str, fileset: Fileset, changes: dict[str, Any]) -> None:
    events.record(
        session,
        actor=ws.principal.name,
        action=action,
        kind="fileset",
        name=fileset.name,
        resource_id=fileset.id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


def create_fileset(
    session: Session,
    ws: WorkspaceAccess,
    *,
    name: str,
    description: str,
    purpose: str,
    storage: str | None,
    store: BlobStore,
) -> Fileset:
    storage = storage or store.kind
    if storage != store.kind:
        raise BadRequest(
            f"Storage '{storage}' is not configured on this server; it stores files in '{store.kind}'",
            error_code="STORAGE_NOT_CONFIGURED",
            solution_msg=f"Omit 'storage' or use '{store.kind}' (set by MODELYARD_STORAGE_URL)",
        )
    fileset = Fileset(
        workspace_id=ws.workspace.id,
        name=name,
        description=description,
        purpose=purpose,
        storage=storage,
        digest=EMPTY_DIGEST,
        created_by=ws.principal.name,
        updated_by=ws.principal.name,
    )
    insert_unique(
        session,
        fileset,
        Conflict(
            f"Fileset '{ws.workspace.name}/{name}' already exists",
            error_code="FILESET_ALREADY_EXISTS",
            solution_msg="Pick another name, or upload into the existing fileset",
        ),
    )
    _record(session, ws, "fileset.created", fileset, {"purpose": purpose, "storage": storage})
    return fileset


def list_filesets(
    session: Session, ws: WorkspaceAccess, query: ListQuery
) -> tuple[list[Fileset], Pagination, str | None]:
    return paginate(
        session,
        repository.filesets_query(ws.workspace.id, query.filters),
        query,
        columns={"created_at": Fileset.created_at, "updated_at": Fileset.updated_at, "name": Fileset.name},
        tiebreak=Fileset.id,
    )


def update_fileset(
    session: Session, ws: WorkspaceAccess, name: str, changes: dict[str, Any], if_match: str | None
) -> Fileset:
    fileset = get_fileset(session, ws, name)
    check_if_match(if_match, fileset)
    applied = apply_changes(fileset, changes)
    if applied:
        fileset.updated_by = ws.principal.name
        session.flush()
        _record(session, ws, "fileset.updated", fileset, applied)
    return fileset


def delete_fileset(session: Session, ws: WorkspaceAccess, name: str, force: bool, if_match: str | None) -> None:
    fileset = get_fileset(session, ws, name)
    check_if_match(if_match, fileset)
    referrers = [ref for checker in REFERENCE_CHECKERS for ref in checker(session, fileset)]
    if referrers and not force:
        raise Conflict(
            f"Fileset '{ws.workspace.name}/{name}' is in use by {', '.join(referrers)}",
            error_code="FILESET_IN_USE",
            solution_msg="Delete or repoint those first, or delete with ?force=true",
            detail={"referenced_by": referrers},
        )
    session.delete(fileset)
    _record(
        session,
        ws,
        "fileset.deleted",
        fileset,
        {"force": force, "referenced_by": referrers, "files": fileset.file_count},
    )


def _refresh_manifest(session: Session, ws: WorkspaceAccess, fileset: Fileset) -> None:
    session.flush()
    rows = repository.manifest(session, fileset.id)
    digest = hashlib.sha256()
    for path, size, sha in rows:
        digest.update(f"{path}\t{size}\t{sha}\n".encode())
    fileset.digest = digest.hexdigest()
    fileset.file_count = len(rows)
    fileset.total_size = sum(size for _path, size, _sha in rows)
    fileset.updated_by = ws.principal.name
    fileset.updated_at = utcnow()
    session.flush()


def check_upload(
    session: Session, fileset: Fileset, path: str, if_match: str | None, if_none_match: str | None
) -> None:
    """Preconditions of an upload: `If-Match` names the sha256 the file must have now (a conditional replace),
    `If-None-Match: *` that it must not exist yet; and a path may not be both a file and a directory."""
    existing = repository.get_file(session, fileset.id, path)
    current = f'"{existing.sha256}"' if existing else None
    if if_match is not None and not header_matches(if_match, current):
        raise PreconditionFailed(
            f"If-Match {if_match.strip()} does not match file '{path}' "
            + (f"(its ETag is {current})" if current else "(it does not exist)"),
            detail={"etag": current},
        )
    if if_none_match is not None and current is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        if "*" in tags or current in tags:
            raise PreconditionFailed(
                f"File '{path}' already exists",
                detail={"etag": current},
                solution_msg="Leave out If-None-Match to replace it",
            )
    clash = repository.clashing_path(session, fileset.id, path)
    if clash is not None:
        raise Conflict(
            f"Path '{path}' clashes with '{clash}': a path cannot be both a file and a directory",
            error_code="PATH_CONFLICT",
            solution_msg="Upload under another path, or delete the clashing file first",
        )


def commit_upload(
    session: Session,
    ws: WorkspaceAccess,
    fileset_name: str,
    path: str,
    writer: BlobWriter,
    store: BlobStore,
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> tuple[FilesetFile, bool]:
    """Record a finished upload; True when the path is new, False when it replaced a file."""
    fileset = get_fileset(session, ws, fileset_name)  # it may have been deleted while the bytes streamed
    check_upload(session, fileset, path, if_match, if_none_match)
    now = utcnow()
    repository.touch_blob(session, writer.sha256, writer.size, now)
    store.place(writer)
    created = True
    try:
        with session.begin_nested():
            file = FilesetFile(fileset_id=fileset.id, path=path, size=writer.size, sha256=writer.sha256)
            session.add(file)
    except IntegrityError:
        created = False
        file = repository.get_file(session, fileset.id, path)  # type: ignore[assignment]
        previous = {"size": file.size, "sha256": file.sha256}
        file.size, file.sha256, file.updated_at = writer.size, writer.sha256, now
    changes: dict[str, Any] = {"path": path, "size": writer.size, "sha256": writer.sha256}
    if not created:
        changes["replaced"] = previous
    _refresh_manifest(session, ws, fileset)
    _record(session, ws, "fileset.file_uploaded", fileset, changes)
    return file, created


def get_file(session: Session, ws: WorkspaceAccess, fileset_name: str, path: str) -> FilesetFile:
    return _get_file(session, ws, get_fileset(session, ws, fileset_name), path)


def _get_file(session: Session, ws: WorkspaceAccess, fileset: Fileset, path: str) -> FilesetFile:
    file = repository.get_file(session, fileset.id, path)
    if file is None:
        raise NotFound(
            f"File '{path}' not found in fileset '{ws.workspace.name}/{fileset.name}'",
            error_code="FILE_NOT_FOUND",
            solution_msg=f"List the files with GET /v1/workspaces/{ws.workspace.name}/filesets/{fileset.name}/files",
        )
    return file


def delete_file(session: Session, ws: WorkspaceAccess, fileset_name: str, path: str, if_match: str | None) -> None:
    fileset = get_fileset(session, ws, fileset_name)
    file = _get_file(session, ws, fileset, path)
    if if_match is not None and not header_matches(if_match, f'"{file.sha256}"'):
        raise PreconditionFailed(
            f"If-Match {if_match.strip()} does not match file '{path}'", detail={"etag": f'"{file.sha256}"'}
        )
    session.delete(file)
    _refresh_manifest(session, ws, fileset)
    _record(session, ws, "fileset.file_deleted", fileset, {"path": path, "size": file.size, "sha256": file.sha256})


def list_files(
    session: Session, ws: WorkspaceAccess, fileset_name: str, prefix: str, query: ListQuery
) -> tuple[list[FilesetFile], Pagination, str | None]:
    fileset = get_fileset(session, ws, fileset_name)
    return paginate(
        session,
        repository.files_query(fileset.id, prefix),
        query,
        columns={"path": FilesetFile.path, "created_at": FilesetFile.created_at, "updated_at": FilesetFile.updated_at},
        tiebreak=FilesetFile.path,
    )


def collect_garbage(db: Database, store: BlobStore, grace_seconds: float = GC_GRACE_SECONDS, limit: int = 1000) -> int:
    """Remove blobs that no file has pointed at for `grace_seconds`. Each removal holds the blob's row lock while it
    deletes the bytes, so an upload of the same content waits and then stores them again."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with db.session(write=False) as session:
        candidates = repository.garbage_candidates(session, cutoff, limit)
    removed = 0
    for sha256 in candidates:
        with db.session(write=True) as session:
            blob = repository.lock_garbage(session, sha256, cutoff)
            if blob is None:
                continue
            store.delete(sha256)
            session.delete(blob)
            session.commit()
            removed += 1
    if removed:
        log.info("removed %d unreferenced blobs from %s", removed, store.describe())
    return removed
