"""Reading the files behind a version wherever they are, for the worker: list them, read byte ranges (for
safetensors headers), stream them (to hash what has no known sha256). A `SourceError` means the path itself is
unusable (missing, empty), which no retry will fix; other exceptions (network, disk) are retried by the worker."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.fileset import repository as filesets
from modelyard.model.sources import SourceRef
from modelyard.storage import BlobStore
from modelyard.workspace.tables import Workspace

READ_CHUNK = 4 * 1024 * 1024


class SourceError(Exception):
    """The path cannot be used as it is; the message says why, naming the path."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    size: int
    sha256: str | None


class FileSource(ABC):
    @abstractmethod
    def list_files(self) -> list[SourceFile]: ...

    @abstractmethod
    def read_range(self, path: str, start: int, length: int) -> bytes: ...

    @abstractmethod
    def iter_bytes(self, path: str) -> Iterator[bytes]: ...

    def pinned(self) -> dict[str, Any]:
        """What pins the files read (e.g. a Hub commit), recorded on the version."""
        return {}

    def read_all(self, path: str, size: int) -> bytes:
        return self.read_range(path, 0, size) if size else b""


class FilesetSource(FileSource):
    def __init__(self, db: Database, store: BlobStore, ref: SourceRef, shown: str) -> None:
        self.db, self.store, self.ref, self.shown = db, store, ref, shown
        self._sha: dict[str, str] = {}

    def list_files(self) -> list[SourceFile]:
        with self.db.session(write=False) as session:
            workspace = session.scalar(sa.select(Workspace).where(Workspace.name == self.ref.workspace))
            fileset = filesets.get_fileset(session, workspace.id, self.ref.fileset) if workspace else None
            if fileset is None:
                resolved = f"{self.ref.workspace}/{self.ref.fileset}"
                given = "" if self.shown == resolved else f" (from '{self.shown}')"
                raise SourceError(f"The model path must exist: fileset '{resolved}'{given} was not found")
            prefix = f"{self.ref.subdir}/" if self.ref.subdir else ""
            rows = session.scalars(filesets.files_query(fileset.id, prefix)).all()
            files = [SourceFile(f.path[len(prefix) :], f.size, f.sha256) for f in rows]
        self._sha = {f.path: f.sha256 or "" for f in files}
        return files

    def read_range(self, path: str, start: int, length: int) -> bytes:
        return b"".join(self.store.read(self._sha[path], start, start + length - 1)) if length else b""

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        return self.store.read(self._sha[path])


class LocalSource(FileSource):
    def __init__(self, ref: SourceRef, allowed_roots: list[Path]) -> None:
        self.root = Path(ref.path)
        self.allowed_roots = allowed_roots

    def _inside(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root) for root in self.allowed_roots)

    def list_files(self) -> list[SourceFile]:
        if not self.root.is_dir() or not self._inside(self.root):
            raise SourceError(f"The model path must exist: '{self.root}' is not a directory")
        files = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if name.startswith(".") or not full.is_file() or not self._inside(full):
                    continue  # hidden files (.git, caches) and links leading outside the allowed roots
                files.append(SourceFile(full.relative_to(self.root).as_posix(), full.stat().st_size, None))
        return files

    def read_range(self, path: str, start: int, length: int) -> bytes:
        with (self.root / path).open("rb") as handle:
            handle.seek(start)
            return handle.read(length)

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        with (self.root / path).open("rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                yield chunk


class S3Source(FileSource):
    def __init__(self, ref: SourceRef, endpoint_url: str | None) -> None:
        import boto3

        self.ref = ref
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, path: str) -> str:
        return f"{self.ref.prefix}/{path}" if self.ref.prefix else path

    def list_files(self) -> list[SourceFile]:
        from botocore.exceptions import ClientError

        prefix = f"{self.ref.prefix}/" if self.ref.prefix else ""
        files = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.ref.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(prefix) :]
                    if key and not key.endswith("/"):
                        files.append(SourceFile(key, int(item["Size"]), None))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "AccessDenied", "403", "404"):
                raise SourceError(
                    f"The model path must exist: s3://{self.ref.bucket}/{self.ref.prefix} cannot be listed ({code})"
                ) from exc
            raise
        return files

    def read_range(self, path: str, start: int, length: int) -> bytes:
        if not length:
            return b""
        answer = self.client.get_object(
            Bucket=self.ref.bucket, Key=self._key(path), Range=f"bytes={start}-{start + length - 1}"
        )
        return bytes(answer["Body"].read())

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.ref.bucket, Key=self._key(path))["Body"]
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()


class HubSource(FileSource):
    def __init__(self, ref: SourceRef) -> None:
        self.ref = ref
        self.snapshot: Any = None

    def list_files(self) -> list[SourceFile]:
        from modelyard.inspect import hub
        from modelyard.inspect.errors import HubUnavailableError, InspectError

        try:
            self.snapshot = hub.resolve(self.ref.repo_id, self.ref.revision)
        except HubUnavailableError:
            raise  # the Hub could not be reached: worth a retry
        except InspectError as exc:
            raise SourceError(f"The model path must exist: {exc}") from exc
        return [SourceFile(f.path, f.size or 0, f.sha256) for f in self.snapshot.files]

    def read_range(self, path: str, start: int, length: int) -> bytes:
        from modelyard.inspect import hub

        return hub.read_range(self.snapshot, path, start, length) if length else b""

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        from modelyard.inspect import hub

        with hub.open_file(self.snapshot, path) as chunks:
            yield from chunks

    def pinned(self) -> dict[str, Any]:
        return {"repo_id": self.ref.repo_id, "revision": self.ref.revision, "commit": self.snapshot.commit_sha}


def open_source(ref: SourceRef, shown: str, db: Database, store: BlobStore, settings: Settings) -> FileSource:
    if ref.kind == "fileset":
        return FilesetSource(db, store, ref, shown)
    if ref.kind == "local":
        return LocalSource(ref, settings.allowed_local_roots)
    if ref.kind == "s3":
        return S3Source(ref, settings.s3_endpoint_url or None)
    return HubSource(ref)
