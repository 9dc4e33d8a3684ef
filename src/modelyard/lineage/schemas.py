"""Bodies of datasets, prompts and fine-tuning jobs. References to other records are by name."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from modelyard.kit.pagination import Filters
from modelyard.kit.schemas import Description, Name, Schema, UpdateSchema
from modelyard.lineage.tables import JobStatus

Fraction = Field(gt=0, le=1)


class DatasetSource(Schema):
    type: Literal["fileset", "huggingface", "local", "url"]
    ref: str = Field(min_length=1, max_length=2048)


class DatasetCreate(Schema):
    name: Name
    description: Description = ""
    source: DatasetSource
    features: list[str] = Field(default_factory=list, max_length=1000)


class DatasetUpdate(UpdateSchema):
    description: Description | None = None
    features: list[str] | None = Field(default=None, max_length=1000)


class DatasetRead(Schema):
    id: str
    name: str
    workspace: str
    description: str
    source: DatasetSource
    features: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class PromptCreate(Schema):
    name: Name
    description: Description = ""
    dataset: Name | None = None
    prompt_template: str = Field(max_length=100_000)
    input_template: str = Field(max_length=100_000)
    completion_template: str = Field(max_length=100_000)


class PromptUpdate(UpdateSchema):
    description: Description | None = None
    dataset: Name | None = None
    prompt_template: str | None = Field(default=None, max_length=100_000)
    input_template: str | None = Field(default=None, max_length=100_000)
    completion_template: str | None = Field(default=None, max_length=100_000)


class PromptRead(Schema):
    id: str
    name: str
    workspace: str
    description: str
    dataset: str | None
    prompt_template: str
    input_template: str
    completion_template: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class JobCreate(Schema):
    name: Name
    description: Description = ""
    base_model: str = Field(min_length=1, max_length=511, description="'model' or 'workspace/model'")
    base_model_version: str | None = Field(default=None, max_length=64)
    dataset: Name | None = None
    prompt: Name | None = None
    adapter_name: Name | None = None
    dataset_fraction: float = Field(default=1.0, gt=0, le=1, description="Dataset fraction must be between 0 and 1")
    train_test_split: float = Field(default=0.9, gt=0, le=1, description="Train-test split must be between 0 and 1")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus = JobStatus.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobUpdate(UpdateSchema):
    description: Description | None = None
    status: JobStatus | None = None
    hyperparameters: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobRead(Schema):
    id: str
    name: str
    workspace: str
    description: str
    base_model: str | None
    base_model_version: str | None
    dataset: str | None
    prompt: str | None
    adapter_name: str
    dataset_fraction: float
    train_test_split: float
    hyperparameters: dict[str, Any]
    status: JobStatus
    started_at: datetime | None
    finished_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class LineageFilters(Filters):
    name_prefix: str | None = Field(default=None, max_length=255)


class JobFilters(LineageFilters):
    status: JobStatus | None = None
