"""Where file contents live: a local directory or an S3-compatible store, behind one small interface.
Contents are stored by SHA-256, so the same bytes are stored once however often they are uploaded."""

from __future__ import annotations

from modelyard.config import Settings
from modelyard.storage.base import BlobStore, BlobWriter, StorageError


def create_store(settings: Settings) -> BlobStore:
    url = settings.storage_url
    if url.startswith("s3://"):
        from modelyard.storage.s3 import S3Store

        return S3Store.from_url(url, endpoint_url=settings.s3_endpoint_url or None)
    if url.startswith("file://"):
        from modelyard.storage.local import LocalStore

        return LocalStore.from_url(url)
    raise ValueError(f"MODELYARD_STORAGE_URL must start with file:// or s3://, not {url!r}")


__all__ = ["BlobStore", "BlobWriter", "StorageError", "create_store"]
