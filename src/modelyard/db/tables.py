"""Imports every table so `Base.metadata` is complete (for Alembic and for the tests' schema checks)."""

from modelyard.event.tables import Event
from modelyard.fileset.tables import Blob, Fileset, FilesetFile
from modelyard.identity.tables import ApiToken, User
from modelyard.job.tables import Job
from modelyard.kit.tables import IdempotencyKey
from modelyard.model.tables import Model, ModelLabel, ModelVersion, ModelVersionFile
from modelyard.workspace.tables import Membership, Workspace

__all__ = [
    "ApiToken",
    "Blob",
    "Event",
    "Fileset",
    "FilesetFile",
    "IdempotencyKey",
    "Job",
    "Membership",
    "Model",
    "ModelLabel",
    "ModelVersion",
    "ModelVersionFile",
    "User",
    "Workspace",
]
