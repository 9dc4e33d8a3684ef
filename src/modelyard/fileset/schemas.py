"""Request and answer bodies of filesets and files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from modelyard.fileset.tables import Purpose
from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Description, Name, Schema, Timestamps, UpdateSchema

StorageKind = Literal["local", "s3"]


def _storage_type(value: Any) -> Any:
    # NeMo sends a StorageConfig object ({"type": "local"}); a plain string is accepted too.
    if isinstance(value, dict) and set(value) == {"type"}:
        return value["type"]
    return value


class FilesetCreate(Schema):
    name: Name
    description: Description = ""
    purpose: Purpose = Purpose.GENERIC
    storage: Annotated[StorageKind | None, BeforeValidator(_storage_type)] = Field(
        default=None, description="'local' or 's3' (or NeMo's {\"type\": ...}); default: the server's store"
    )


class FilesetUpdate(UpdateSchema):
    description: Description | None = None
    purpose: Purpose | None = None


class FilesetRead(Timestamps):
    id: str
    name: str
    workspace: str
    description: str
    purpose: Purpose
    storage: StorageKind
    digest: str = Field(description="sha256 of the sorted manifest: one 'path<TAB>size<TAB>sha256' line per file")
    file_count: int
    total_size: int
    created_by: str
    updated_by: str


class FilesetFilters(Filters):
    purpose: Purpose | None = None
    storage: StorageKind | None = None
    name_prefix: str | None = Field(default=None, max_length=255)


class FileRead(Schema):
    path: str
    size: int
    sha256: str
    created_at: datetime
    updated_at: datetime


class FileFilters(Filters):
    path: str | None = Field(default=None, max_length=1024, description="Only files whose path starts with this")
