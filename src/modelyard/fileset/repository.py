"""SQL for filesets, files and blobs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelyard.db.match import starts_with
from modelyard.fileset.tables import Blob, Fileset, FilesetFile


def get_fileset(session: Session, workspace_id: str, name: str) -> Fileset | None:
    return session.scalar(sa.select(Fileset).where(Fileset.workspace_id == workspace_id, Fileset.name == name))


def filesets_query(workspace_id: str, filters: dict[str, object]) -> sa.Select[Fileset]:
    stmt = sa.select(Fileset).where(Fileset.workspace_id == workspace_id)
    if "purpose" in filters:
        stmt = stmt.where(Fileset.purpose == filters["purpose"])
    if "storage" in filters:
        stmt = stmt.where(Fileset.storage == filters["storage"])
    if "name_prefix" in filters:
        stmt = stmt.where(starts_with(Fileset.name, str(filters["name_prefix"])))
    return stmt


def count_in_workspace(session: Session, workspace_id: str) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Fileset.workspace_id == workspace_id)) or 0


def get_file(session: Session, fileset_id: str, path: str) -> FilesetFile | None:
    return session.get(FilesetFile, (fileset_id, path))


def files_query(fileset_id: str, prefix: str) -> sa.Select[FilesetFile]:
    stmt = sa.select(FilesetFile).where(FilesetFile.fileset_id == fileset_id)
    if prefix:
        stmt = stmt.where(starts_with(FilesetFile.path, prefix))
    return stmt


def manifest(session: Session, fileset_id: str) -> list[tuple[str, int, str]]:
    rows = session.execute(
        sa.select(FilesetFile.path, FilesetFile.size, FilesetFile.sha256).where(FilesetFile.fileset_id == fileset_id)
    )
    return sorted((path, size, sha) for path, size, sha in rows)


def touch_blob(session: Session, sha256: str, size: int, now: datetime) -> None:
    """Insert the blob row or refresh its `last_used_at`, taking its row lock (garbage collection takes it too)."""
    insert = postgresql.insert(Blob) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(Blob)
    stmt = insert.values(sha256=sha256, size=size, created_at=now, last_used_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=[Blob.sha256], set_={"last_used_at": now}))


def unreferenced(cutoff: datetime) -> sa.ColumnElement[bool]:
    referenced = sa.exists().where(FilesetFile.sha256 == Blob.sha256)
    return sa.and_(Blob.last_used_at < cutoff, ~referenced)


def garbage_candidates(session: Session, cutoff: datetime, limit: int) -> list[str]:
    return list(session.scalars(sa.select(Blob.sha256).where(unreferenced(cutoff)).limit(limit)))


def lock_garbage(session: Session, sha256: str, cutoff: datetime) -> Blob | None:
    return session.scalar(sa.select(Blob).where(Blob.sha256 == sha256, unreferenced(cutoff)).with_for_update())


def clashing_path(session: Session, fileset_id: str, path: str) -> str | None:
    """An existing file that is a parent directory of `path`, or lies under `path` as a directory, if any."""
    parts = path.split("/")
    parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
    conditions = [starts_with(FilesetFile.path, path + "/")]
    if parents:
        conditions.append(FilesetFile.path.in_(parents))
    return session.scalar(
        sa.select(FilesetFile.path).where(FilesetFile.fileset_id == fileset_id, sa.or_(*conditions)).limit(1)
    )
