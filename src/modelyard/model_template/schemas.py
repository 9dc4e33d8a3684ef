"""Request and answer bodies of model templates, with SGP's fields and defaults (LaunchVendorConfiguration,
ModelBundleConfiguration, CreateModelEndpointConfig, FineTuningBundleConfiguration), and of the template-derived
model routes (validate-request, launch-config)."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Description, Name, Schema, UpdateSchema
from modelyard.model.tables import ModelType
from modelyard.model_template.tables import EndpointProtocol, EndpointType

# Kubernetes resource quantities: a non-negative decimal number with an optional binary (Ki..Ei), decimal
# (n, u, m, k, M..E) or exponent suffix: 8Gi, 512Mi, 500m, 1.5, 1e3.
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(f"'{value}' is not a Kubernetes quantity: write e.g. 8Gi, 512Mi, 16G, 500m or 1.5")
    return value


def _env(value: dict[str, str] | None) -> dict[str, str] | None:
    for name in value or {}:
        if not _ENV_NAME.match(name):
            raise ValueError(
                f"'{name}' is not an environment variable name (a letter or '_', then letters, digits, '_')"
            )
    return value


Quantity = Annotated[str, Field(max_length=64), AfterValidator(_quantity)]
Cpus = Annotated[StrictInt, Field(ge=0)] | Annotated[StrictFloat, Field(ge=0)] | Quantity
Env = Annotated[dict[str, Annotated[str, Field(max_length=65536)]] | None, AfterValidator(_env)]
Route = Annotated[str, Field(pattern=r"^/", max_length=1024)]
Command = list[Annotated[str, Field(max_length=65536)]] | None


class GpuType(enum.StrEnum):
    NVIDIA_TESLA_T4 = "nvidia-tesla-t4"
    NVIDIA_AMPERE_A10 = "nvidia-ampere-a10"
    NVIDIA_AMPERE_A100 = "nvidia-ampere-a100"
    NVIDIA_AMPERE_A100E = "nvidia-ampere-a100e"
    NVIDIA_HOPPER_H100 = "nvidia-hopper-h100"
    NVIDIA_HOPPER_H100_1G20GB = "nvidia-hopper-h100-1g20gb"
    NVIDIA_HOPPER_H100_3G40GB = "nvidia-hopper-h100-3g40gb"


class TrainingDatasetSchemaType(enum.StrEnum):
    GENERATION = "GENERATION"
    RERANKING_QUESTIONS = "RERANKING_QUESTIONS"


class BundleConfig(Schema):
    """SGP's ModelBundleConfiguration: the image that serves the model."""

    registry: str = Field(max_length=512)
    image: str = Field(max_length=512)
    tag: str = Field(max_length=256)
    command: Command = Field(default=None, description="May hold ${name} placeholders of creation parameters")
    env: Env = Field(default=None, description="Values may hold ${name} placeholders of creation parameters")
    streaming_command: Command = Field(default=None, description="May hold ${name} placeholders")
    readiness_initial_delay_seconds: int = Field(default=120, ge=0)
    healthcheck_route: Route = "/readyz"
    predict_route: Route = "/predict"
    streaming_predict_route: Route = "/generate_streaming"


class EndpointConfig(Schema):
    """SGP's CreateModelEndpointConfig: resources and autoscaling of the endpoint."""

    cpus: Cpus = 3
    memory: Quantity = "8Gi"
    storage: Quantity = "16Gi"
    gpus: int = Field(default=0, ge=0)
    gpu_type: GpuType | None = None
    min_workers: int = Field(default=0, ge=0)
    max_workers: int = Field(default=1, ge=0)
    per_worker: int = Field(
        default=10, ge=1, description="Concurrent requests per worker above which the autoscaler adds workers"
    )
    endpoint_type: EndpointType = EndpointType.ASYNC
    high_priority: bool = False

    @model_validator(mode="after")
    def _workers(self) -> EndpointConfig:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) must not exceed max_workers ({self.max_workers})")
        return self


class RequiredResources(Schema):
    cpus: Cpus = 3
    memory: Quantity = "8Gi"
    storage: Quantity = "16Gi"
    gpus: int = Field(default=0, ge=0)
    gpu_type: GpuType | None = None


class FineTuningBundleConfig(Schema):
    """SGP's FineTuningBundleConfiguration: the image that fine-tunes models of this template."""

    registry: str = Field(max_length=512)
    image: str = Field(max_length=512)
    tag: str = Field(max_length=256)
    command: Command = None
    env: Env = None
    mount_location: str = Field(
        default="/workspace/launch_specific/config.json",
        max_length=1024,
        description="Where the job's config file appears in the container",
    )
    training_dataset_schema_type: TrainingDatasetSchemaType | None = None
    resources: RequiredResources | None = None


class VendorConfiguration(Schema):
    """SGP's LaunchVendorConfiguration."""

    vendor: Literal["LAUNCH"] = "LAUNCH"
    bundle_config: BundleConfig
    endpoint_config: EndpointConfig | None = None
    fine_tuning_job_bundle_config: FineTuningBundleConfig | None = None


ParameterSchemaDoc = Annotated[
    dict[str, Any],
    Field(
        description='SGP\'s {"parameters": [{name, type: str|int|float|bool, description, required}]}, or a JSON '
        'Schema (Draft 2020-12) with "type": "object" whose properties are the parameters',
        examples=[
            {"parameters": [{"name": "model_weights_uri", "type": "str", "description": "Weights", "required": True}]}
        ],
    ),
]


class ModelTemplateCreate(Schema):
    name: Name
    description: Description = ""
    endpoint_type: EndpointType
    model_type: ModelType
    endpoint_protocol: EndpointProtocol | None = None
    vendor_configuration: VendorConfiguration
    model_creation_parameters_schema: ParameterSchemaDoc | None = None
    model_request_parameters_schema: ParameterSchemaDoc | None = None


class ModelTemplateUpdate(UpdateSchema):
    """Only `description` may change; other fields are kept here to be refused by name (SGP templates are
    immutable)."""

    model_config = ConfigDict(extra="allow")

    description: Description | None = None


class ModelTemplateRead(Schema):
    id: str
    name: str
    workspace: str
    description: str
    endpoint_type: EndpointType
    model_type: ModelType
    endpoint_protocol: EndpointProtocol | None
    vendor_configuration: VendorConfiguration
    model_creation_parameters_schema: dict[str, Any] | None
    model_request_parameters_schema: dict[str, Any] | None
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class ModelTemplateFilters(Filters):
    model_type: ModelType | None = None
    endpoint_type: EndpointType | None = None
    name_prefix: str | None = Field(default=None, max_length=255)


class AllModelTemplateFilters(ModelTemplateFilters):
    workspace: str | None = Field(default=None, max_length=255, description="Only this workspace's templates")


# -- models made from templates --------------------------------------------------------------------------------------


class Coercion(Schema):
    """A parameter value read as its declared type, e.g. "5" as the int 5."""

    loc: list[str | int]
    input: Any
    value: Any
    type: str


class ParameterBindings(Schema):
    bindings: dict[str, Any]


class ValidateRequest(Schema):
    model_request_parameters: ParameterBindings | None = None


class ValidatedRequest(Schema):
    model_request_parameters: ParameterBindings
    coercions: list[Coercion]


class LaunchConfigRead(Schema):
    model: str = Field(description="'workspace/model'")
    model_template: str = Field(description="'workspace/template'")
    model_template_id: str
    model_type: ModelType
    endpoint_type: EndpointType
    endpoint_protocol: EndpointProtocol | None
    vendor_configuration: VendorConfiguration = Field(
        description="The template's, with ${name} placeholders replaced, every creation parameter in "
        "bundle_config.env, and endpoint_config's defaults when the template left it out"
    )
    model_creation_parameters: dict[str, Any]
