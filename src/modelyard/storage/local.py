"""Blobs in a local directory: `blobs/ab/cd/<sha256>`, written through `tmp/` on the same filesystem, fsynced and
renamed into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from modelyard.storage.base import READ_CHUNK, BlobStore, BlobWriter, StorageError, check_sha256

SYNC_EVERY = 64 * 1024 * 1024


class LocalWriter(BlobWriter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._unsynced = 0
        try:
            self._file = path.open("xb")
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror}") from exc

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
            self._unsynced += len(data)
            if self._unsynced >= SYNC_EVERY:
                # Flush as we go (in the writer thread, while the next bytes arrive), so the final fsync is short.
                self._file.flush()
                os.fdatasync(self._file.fileno())
                self._unsynced = 0
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot write {self.path}: {exc.strerror}") from exc

    def finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class LocalStore(BlobStore):
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.blobs = root / "blobs"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        return cls(Path(unquote(urlparse(url).path)))

    def blob_path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.blobs / sha256[:2] / sha256[2:4] / sha256

    def writer(self) -> LocalWriter:
        return LocalWriter(self.tmp / f"upload-{secrets.token_hex(12)}")

    def place(self, writer: BlobWriter) -> None:
        assert isinstance(writer, LocalWriter)
        target = self.blob_path(writer.sha256)
        if target.exists():
            writer.abort()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(writer.path, target)
        # Make the rename itself durable.
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self, sha256: str) -> bool:
        return self.blob_path(sha256).exists()

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.blob_path(sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"blob {sha256} is missing from {self.blobs}") from exc
        with handle:
            handle.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = handle.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, sha256: str) -> None:
        self.blob_path(sha256).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)

    def temporary_files(self) -> list[Path]:
        return sorted(self.tmp.iterdir())
