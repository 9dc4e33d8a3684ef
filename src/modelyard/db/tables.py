"""Imports every table so `Base.metadata` is complete (for Alembic and for the tests' schema checks)."""

from modelyard.adapter.tables import Adapter
from modelyard.event.tables import Event
from modelyard.fileset.tables import Blob, Fileset, FilesetFile
from modelyard.identity.tables import ApiToken, User
from modelyard.job.tables import Job
from modelyard.kit.tables import IdempotencyKey
from modelyard.lineage.tables import Dataset, FineTuningJob, Prompt
from modelyard.model.tables import Model, ModelLabel, ModelVersion, ModelVersionFile
from modelyard.model_template.tables import ModelTemplate
from modelyard.workspace.tables import Membership, Workspace

__all__ = [
    "Adapter",
    "ApiToken",
    "Blob",
    "Dataset",
    "Event",
    "Fileset",
    "FilesetFile",
    "FineTuningJob",
    "IdempotencyKey",
    "Job",
    "Membership",
    "Model",
    "ModelLabel",
    "ModelTemplate",
    "ModelVersion",
    "ModelVersionFile",
    "Prompt",
    "User",
    "Workspace",
]
