"""The Python SDK of modelyard: `Client` and its resource groups, the list `Pager`, and the errors.

It depends on httpx and the standard library only, never on the server's modules::

    from modelyard.client import Client

    with Client() as client:
        client.workspaces.create("research", description="R&D")
        for workspace in client.workspaces.list():
            print(workspace["name"])
"""

from modelyard.client._adapters import Adapters
from modelyard.client._client import Client
from modelyard.client._filesets import DownloadSummary, Filesets, RemoteFile, TransferEvent, UploadSummary
from modelyard.client._http import Resource
from modelyard.client._lineage import Datasets, FineTuningJobs, Prompts
from modelyard.client._models import Models, ModelVersions
from modelyard.client._pager import Page, Pager
from modelyard.client._resources import Events, Members, Tokens, Users, Workspaces
from modelyard.client._templates import ModelTemplates
from modelyard.client.errors import (
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConflictError,
    ModelyardError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    ServerError,
    TransportError,
    UnsafePathError,
    ValidationError,
    WaitTimeoutError,
)

__all__ = [
    "Adapters",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "Client",
    "ConflictError",
    "Datasets",
    "DownloadSummary",
    "Events",
    "Filesets",
    "FineTuningJobs",
    "Members",
    "ModelTemplates",
    "ModelVersions",
    "Models",
    "ModelyardError",
    "NotFoundError",
    "Page",
    "Pager",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "Prompts",
    "RemoteFile",
    "Resource",
    "ServerError",
    "Tokens",
    "TransferEvent",
    "TransportError",
    "UnsafePathError",
    "UploadSummary",
    "Users",
    "ValidationError",
    "WaitTimeoutError",
    "Workspaces",
]
