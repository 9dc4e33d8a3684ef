"""The storage interface. Writes go to a temporary object first and are placed under their content hash only
when complete, so a crash or a dropped connection never leaves half a file where a reader could find it."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

READ_CHUNK = 4 * 1024 * 1024


class StorageError(Exception):
    """The store failed (disk full, bucket unreachable, ...)."""


class BlobWriter(ABC):
    """A temporary object being written; `sha256` and `size` describe what was written so far."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hash_part(data)
        self.store_part(data)

    # The two halves of `write`, for callers that run them in two threads at once (hashing and storing each
    # take about a second per GiB here). Each half must see the parts in order.
    def hash_part(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def store_part(self, data: bytes) -> None:
        self._write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def finish(self) -> None:
        """Flush the temporary object (durably); call before `BlobStore.place`."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the temporary object. Safe to call more than once and after `place`."""


class BlobStore(ABC):
    kind: str

    @abstractmethod
    def writer(self) -> BlobWriter: ...

    @abstractmethod
    def place(self, writer: BlobWriter) -> None:
        """Move the finished temporary object to its content address (a no-op when those bytes already exist)."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes [start, end] (inclusive; to the end when None) of a blob, in chunks."""

    @abstractmethod
    def delete(self, sha256: str) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs are, for people (no secrets)."""


def check_sha256(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"not a sha256 hex digest: {value!r}")
    return value
