"""`Client`: the entry point of the SDK, holding the transport and one attribute per resource group."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from modelyard.client._adapters import Adapters
from modelyard.client._filesets import Filesets
from modelyard.client._http import HTTPTransport, Resource
from modelyard.client._lineage import Datasets, FineTuningJobs, Prompts
from modelyard.client._models import Models
from modelyard.client._resources import Events, Members, Tokens, Users, Workspaces
from modelyard.client._templates import ModelTemplates


class Client:
    """A client of one modelyard server.

    `base_url` defaults to MODELYARD_URL, else http://127.0.0.1:8000. `token` defaults to MODELYARD_TOKEN, else
    the contents of $MODELYARD_HOME/admin-token (MODELYARD_HOME defaults to ~/.modelyard); it is sent as
    `Authorization: Bearer <token>`. Pass `http_client` to use your own `httpx.Client` (or FastAPI's
    `TestClient`) as is: the SDK then neither configures nor closes it, and when it has a base URL of its own,
    only the path of `base_url` is used. Nothing is sent before the first call.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._transport = HTTPTransport(base_url, token, http_client, timeout)
        self.workspaces = Workspaces(self._transport)
        self.members = Members(self._transport)
        self.users = Users(self._transport)
        self.tokens = Tokens(self._transport)
        self.events = Events(self._transport)
        self.filesets = Filesets(self._transport)
        self.models = Models(self._transport)
        self.model_templates = ModelTemplates(self._transport)
        self.adapters = Adapters(self._transport, self.filesets)
        self.datasets = Datasets(self._transport)
        self.prompts = Prompts(self._transport)
        self.fine_tuning_jobs = FineTuningJobs(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def me(self) -> Resource:
        """The caller: their user fields and `memberships` [{workspace, role}]."""
        return self._transport.request("GET", "/v1/me")

    def base_model_types(self) -> list[dict[str, Any]]:
        """Huawei's ListBaseModels: the base model types of the versions you can see, each with how many versions
        declare it (`versions`, `ready_versions`) and the `architectures`, `families` and largest
        `max_position_embeddings` their config.json files showed."""
        response = self._transport.send("GET", "/v1/base-model-types")
        body = response.json()
        return [dict(item) for item in body.get("data", [])] if isinstance(body, dict) else []

    def close(self) -> None:
        """Close the underlying httpx client, unless it was passed in."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"
