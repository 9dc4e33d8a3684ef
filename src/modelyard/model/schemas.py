"""Request and answer bodies of models and model versions (NeMo, SGP and Huawei fields, DESIGN.md section 5)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, field_validator, model_validator

from modelyard.adapter.schemas import AdapterSummary
from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Name, Schema, UpdateSchema
from modelyard.model.tables import ModelType, VersionStatus, Visibility
from modelyard.model_template.schemas import Coercion

ModelDescription = Annotated[str, Field(max_length=1024, description="At most 1024 characters")]

_VERSION_NAME = re.compile(r"^[\w\-. ]{1,64}$")
_BASE_MODEL_TYPE = re.compile(r"^[A-Z][A-Z0-9_.\-]{0,63}$")


def _version_name(value: str) -> str:
    if not _VERSION_NAME.match(value) or value != value.strip():
        raise ValueError(
            "A version name has 1 to 64 letters, digits, '_', '-', '.' or spaces, and no space at either end"
        )
    return value


def _base_model_type(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper()
        if not _BASE_MODEL_TYPE.match(value):
            raise ValueError(
                "base_model_type must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
                "(e.g. QWEN_2_72B, LLAMA_3_1_8B); see GET /v1/base-model-types"
            )
    return value


VersionName = Annotated[str, AfterValidator(_version_name), Field(examples=["v1"])]
BaseModelType = Annotated[str, BeforeValidator(_base_model_type), Field(examples=["QWEN_2_72B"])]
Labels = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\w\-./]+$")],
        Annotated[str, StringConstraints(max_length=1024)],
    ],
    Field(max_length=64, description="String-to-string labels; filter with ?label=key:value"),
]


class LlmModelConfig(Schema):
    base_model_type: BaseModelType
    model_path: str = Field(
        default="",
        max_length=2048,
        description="'ws/fileset', 'fileset://ws/fileset[/dir]', 's3://bucket/prefix' or 'hf://org/name[@revision]'",
    )
    local_model_path: str = Field(
        default="", max_length=4096, description="A directory under MODELYARD_ALLOWED_LOCAL_ROOTS"
    )

    @model_validator(mode="after")
    def _one_path(self) -> LlmModelConfig:
        if bool(self.model_path) == bool(self.local_model_path):
            raise ValueError("Give exactly one of model_path and local_model_path")
        return self


class VersionConfig(Schema):
    llm_model_config: LlmModelConfig


class VersionCreate(Schema):
    name: VersionName | None = Field(default=None, description="Default: v1, v2, ... in order of creation")
    description: ModelDescription = ""
    config: VersionConfig


class VersionUpdate(UpdateSchema):
    description: ModelDescription | None = None


class CurrentVersion(Schema):
    id: str
    name: str
    status: VersionStatus
    digest: str | None


class VersionRead(Schema):
    id: str
    name: str
    model: str = Field(description="'workspace/model'")
    description: str
    status: VersionStatus
    status_message: str
    config: VersionConfig
    source: dict[str, Any] = Field(description="Where the files were read from, pinned (e.g. the Hub commit)")
    spec: dict[str, Any]
    digest: str | None = Field(description="sha256 of the sorted manifest, once READY")
    file_count: int
    total_size: int
    is_current: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class VersionFilters(Filters):
    status: VersionStatus | None = None
    name_prefix: str | None = Field(default=None, max_length=64)


class ManifestEntry(Schema):
    path: str
    size: int
    sha256: str


class ModelCreate(Schema):
    name: Name
    description: ModelDescription = ""
    model_type: ModelType | None = Field(default=None, description="Default: GENERIC, or the template's")
    display_name: str = Field(default="", max_length=255)
    visibility: Visibility = Visibility.PRIVATE
    labels: Labels = Field(default_factory=dict)
    base_model_metadata: dict[str, Any] = Field(default_factory=dict)
    model_card: dict[str, Any] = Field(default_factory=dict)
    training_data_card: dict[str, Any] = Field(default_factory=dict)
    version: VersionCreate | None = Field(default=None, description="A first version, created asynchronously")
    model_template: str | None = Field(
        default=None,
        max_length=511,
        description="Make the model from this template: 'template' or 'workspace/template'",
    )
    model_creation_parameters: dict[str, Any] | None = Field(
        default=None, description="Checked against the template's model_creation_parameters_schema"
    )


class ModelUpdate(UpdateSchema):
    description: ModelDescription | None = None
    model_type: ModelType | None = None
    display_name: str | None = Field(default=None, max_length=255)
    visibility: Visibility | None = None
    labels: Labels | None = None
    base_model_metadata: dict[str, Any] | None = None
    model_card: dict[str, Any] | None = None
    training_data_card: dict[str, Any] | None = None


class ModelReplace(Schema):
    """Huawei's UpdateModelDefinition: rename, describe, switch the current version, or add a version."""

    name: Name | None = None
    description: ModelDescription | None = None
    current_version_id: str | None = Field(default=None, max_length=40)
    version: VersionCreate | None = None


class ModelRead(Schema):
    id: str
    name: str
    workspace: str
    description: str
    model_type: ModelType
    display_name: str
    visibility: Visibility
    labels: dict[str, str]
    base_model_metadata: dict[str, Any]
    model_card: dict[str, Any]
    training_data_card: dict[str, Any]
    current_version_id: str | None
    current_version: CurrentVersion | None
    spec: dict[str, Any] | None = Field(description="The current version's spec, read from its config.json")
    model_template: str | None = Field(default=None, description="'workspace/template' it was made from, if any")
    model_template_id: str | None = None
    model_creation_parameters: dict[str, Any] | None = None
    adapters: list[AdapterSummary] = Field(
        default_factory=list, description="Adapters on this model, from every workspace you can see them in"
    )
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class ModelReplaced(ModelRead):
    new_version: VersionRead | None = None
    coercions: list[Coercion] = Field(
        default_factory=list, description='Creation parameters read as their declared type, e.g. "5" as 5'
    )


class ModelFilters(Filters):
    model_type: ModelType | None = None
    visibility: Visibility | None = None
    name_prefix: str | None = Field(default=None, max_length=255)
    label: list[str] = Field(default_factory=list, description="key:value, repeatable; all must match")
    has_adapters: bool | None = None

    @field_validator("label")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        for value in values:
            if ":" not in value or not value.split(":", 1)[0]:
                raise ValueError(f"label filter {value!r} must be key:value")
        return values


class BaseModelTypeRead(Schema):
    base_model_type: str
    versions: int = Field(description="Versions that declare this type")
    ready_versions: int
    architectures: list[str]
    families: list[str]
    max_position_embeddings: int | None = Field(description="Largest context length seen in the configs read")
