"""Bodies of adapters (NeMo's fields, Cloudera's sources and lineage links), lineage graphs and dataset splits."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from modelyard.inspect.peft import FINETUNING_TYPES
from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Description, Name, Schema, UpdateSchema

_MODEL_REGISTRY_URI = re.compile(r"^models:/[^/\s]+(/(\d+|latest)|@[\w\-]+)$")
_HF_NAME = re.compile(r"^(hf://)?[\w\-.]{1,96}/[\w\-.]{1,96}(@[\w\-./]{1,255})?$")


def _finetuning_type(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in FINETUNING_TYPES:
            raise ValueError(f"finetuning_type must be one of: {', '.join(FINETUNING_TYPES)}")
        return lowered
    return value


FinetuningType = Annotated[str, BeforeValidator(_finetuning_type), Field(examples=["lora"])]


def _not_blank(field: str) -> Any:
    """Cloudera's messages for required text fields that are empty or blank."""

    def check(value: Any) -> Any:
        if value == "":
            raise ValueError(f"Field '{field}' is required.")
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"Field '{field}' cannot be an empty string or only spaces.")
        return value

    return BeforeValidator(check)


class LoraConfig(Schema):
    rank: int = Field(ge=1, le=65536)
    alpha: int | float | None = Field(default=None, gt=0)
    dropout: float | None = Field(default=None, ge=0, lt=1)
    target_modules: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        default=None, max_length=256
    )


class ModelRegistryRef(Schema):
    uri: str = Field(
        max_length=1024, description="models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"
    )
    tracking_uri: str | None = Field(default=None, max_length=2048)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _MODEL_REGISTRY_URI.match(value):
            raise ValueError(
                "uri must look like models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"
            )
        return value


class AdapterSource(Schema):
    """Exactly one of the four sources."""

    fileset: Annotated[str, _not_blank("fileset")] | None = Field(
        default=None, max_length=511, description="'fileset' or 'workspace/fileset'"
    )
    location: Annotated[str, _not_blank("location")] | None = Field(
        default=None, max_length=4096, description="A local directory under MODELYARD_ALLOWED_LOCAL_ROOTS"
    )
    huggingface_name: Annotated[str, _not_blank("huggingface_name")] | None = Field(
        default=None, max_length=512, description="'org/name' or 'org/name@revision'"
    )
    model_registry: ModelRegistryRef | None = None

    @field_validator("huggingface_name")
    @classmethod
    def _hf(cls, value: str | None) -> str | None:
        if value is not None and not _HF_NAME.match(value.strip()):
            raise ValueError("huggingface_name must look like 'org/name' or 'org/name@revision'")
        return value.strip().removeprefix("hf://") if value else value

    @model_validator(mode="after")
    def _exactly_one(self) -> AdapterSource:
        given = [k for k in ("fileset", "location", "huggingface_name", "model_registry") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "Give exactly one source: fileset, location, huggingface_name or model_registry"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class AdapterCreate(AdapterSource):
    name: Annotated[str, _not_blank("name")] = Field(max_length=255, pattern=r"^[\w\-.]+$")
    description: Description = ""
    finetuning_type: FinetuningType
    enabled: bool = True
    lora_config: LoraConfig | None = None
    model_version: str | None = Field(default=None, max_length=64, description="Default: the model's current version")
    fine_tuning_job: Name | None = None
    prompt: Name | None = None


class AdapterCreateWithModel(AdapterCreate):
    model: Annotated[str, _not_blank("model")] = Field(max_length=511, description="'model' or 'workspace/model'")


class AdapterUpdate(UpdateSchema):
    description: Description | None = None
    enabled: bool | None = None
    fileset: Annotated[str, _not_blank("fileset")] | None = Field(default=None, max_length=511)
    fine_tuning_job: Name | None = None
    prompt: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _immutable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = [k for k in ("name", "model", "finetuning_type", "model_version", "lora_config") if k in data]
            if fixed:
                raise ValueError(f"{', '.join(fixed)} cannot be changed after creation; register a new adapter")
        return data


class Check(Schema):
    name: str
    ok: bool
    message: str


class Compatibility(Schema):
    status: str = Field(description="compatible, incompatible or unknown")
    base_version: str | None = None
    checks: list[Check] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class AdapterRead(Schema):
    id: str
    name: str
    workspace: str
    model: str = Field(description="'workspace/model'")
    model_version: str | None
    description: str
    finetuning_type: str
    enabled: bool
    lora_config: dict[str, Any] | None
    fileset: str | None
    location: str | None
    huggingface_name: str | None
    model_registry: dict[str, Any] | None
    source: dict[str, Any] = Field(description="The source type and what pins it (e.g. the Hub commit)")
    fine_tuning_job: str | None
    prompt: str | None
    compatibility: dict[str, Any]
    digest: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class AdapterSummary(Schema):
    name: str
    workspace: str
    finetuning_type: str
    enabled: bool
    model_version: str | None


class AdapterFilters(Filters):
    model: str | None = Field(default=None, max_length=511, description="'model' or 'workspace/model'")
    enabled: bool | None = None
    finetuning_type: Annotated[str | None, BeforeValidator(_finetuning_type)] = None
    fileset: str | None = Field(default=None, max_length=511)
    name_prefix: str | None = Field(default=None, max_length=255)


class DatasetSplit(Schema):
    dataset_fraction: float
    train_test_split: float
    fine_tuning_job: str | None


class LineageNode(Schema):
    kind: str
    name: str
    id: str
    workspace: str | None = None


class LineageEdge(Schema):
    source: str
    target: str
    relation: str


class LineageGraph(Schema):
    nodes: list[LineageNode]
    edges: list[LineageEdge]
