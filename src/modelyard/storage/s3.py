"""Blobs in an S3-compatible bucket: `<prefix>/blobs/ab/<sha256>`. Uploads stream to `<prefix>/tmp/<id>` as a
multipart upload (parts of 16 MiB, so memory stays flat), then are copied server-side to their content address."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from modelyard.storage.base import READ_CHUNK, BlobStore, BlobWriter, StorageError, check_sha256

PART_SIZE = 16 * 1024 * 1024


def _error(action: str, exc: Exception) -> StorageError:
    return StorageError(f"S3 {action} failed: {exc}")


class S3Writer(BlobWriter):
    def __init__(self, store: S3Store, key: str) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._finished = False

    def _flush_part(self) -> None:
        s3 = self.store.client
        try:
            if self._upload_id is None:
                created = s3.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            answer = s3.upload_part(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buffer),
            )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise _error("upload", exc) from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer.clear()

    def _write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= PART_SIZE:
            rest = self._buffer[PART_SIZE:]
            del self._buffer[PART_SIZE:]
            self._flush_part()
            self._buffer += rest

    def finish(self) -> None:
        s3 = self.store.client
        try:
            if self._upload_id is None:
                s3.put_object(Bucket=self.store.bucket, Key=self.key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._flush_part()
                s3.complete_multipart_upload(
                    Bucket=self.store.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise _error("upload", exc) from exc
        self._buffer.clear()
        self._finished = True

    def abort(self) -> None:
        s3 = self.store.client
        try:
            if self._upload_id is not None and not self._finished:
                s3.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self._upload_id)
            s3.delete_object(Bucket=self.store.bucket, Key=self.key)
        except (BotoCoreError, ClientError):
            pass  # best effort: a lifecycle rule on tmp/ cleans up what is left
        self._upload_id = None


class S3Store(BlobStore):
    kind = "s3"

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, config=Config(retries={"max_attempts": 5, "mode": "standard"})
        )

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3Store:
        parsed = urlparse(url)
        if not parsed.netloc:
            raise ValueError(f"MODELYARD_STORAGE_URL {url!r} names no bucket (s3://bucket/prefix)")
        return cls(parsed.netloc, parsed.path, endpoint_url)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def blob_key(self, sha256: str) -> str:
        check_sha256(sha256)
        return self._key("blobs", sha256[:2], sha256)

    def writer(self) -> S3Writer:
        return S3Writer(self, self._key("tmp", f"upload-{secrets.token_hex(12)}"))

    def place(self, writer: BlobWriter) -> None:
        assert isinstance(writer, S3Writer)
        try:
            if not self.exists(writer.sha256):
                self.client.copy(
                    {"Bucket": self.bucket, "Key": writer.key},
                    self.bucket,
                    self.blob_key(writer.sha256),
                    Config=TransferConfig(multipart_threshold=PART_SIZE * 4, multipart_chunksize=PART_SIZE * 4),
                )
        except (BotoCoreError, ClientError) as exc:
            raise _error("copy", exc) from exc
        finally:
            writer.abort()

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.blob_key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _error("head", exc) from exc
        return True

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        byte_range = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.blob_key(sha256), Range=byte_range)
        except (BotoCoreError, ClientError) as exc:
            raise _error("download", exc) from exc
        body = answer["Body"]
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def delete(self, sha256: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(sha256))
        except (BotoCoreError, ClientError) as exc:
            raise _error("delete", exc) from exc

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
