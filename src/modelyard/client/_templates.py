"""`client.model_templates`: Scale GenAI Platform's model templates, the launch scaffolding (image, resources,
parameter schemas) that models are made from. Templates are immutable except for their description.

A template is named by its workspace and its name, given apart (`get("default", "vllm-chat")`) or as one
"workspace/name" string (`get("default/vllm-chat")`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.client._adapters import resource_ref
from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._pager import Pager

TEMPLATE_FIELDS = (
    "name",
    "description",
    "endpoint_type",
    "model_type",
    "endpoint_protocol",
    "vendor_configuration",
    "model_creation_parameters_schema",
    "model_request_parameters_schema",
)


def _collection(workspace: str) -> str:
    return f"/v1/workspaces/{segment(workspace)}/model-templates"


class ModelTemplates:
    """`/v1/workspaces/{ws}/model-templates`, and `/v1/model-templates` (`list_all()`): templates with SGP's fields
    and defaults. Deleting one is refused (`ConflictError` MODEL_TEMPLATE_IN_USE) while models made from it exist."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport

    def _path(self, workspace: str, name: str | None) -> str:
        ws, found = resource_ref(workspace, name, "model template")
        return f"{_collection(ws)}/{segment(found)}"

    def create(
        self,
        workspace: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Resource:
        """A new template, from SGP's body as a dict (e.g. read from a JSON or YAML file) and/or as keyword
        arguments, which win: `name`, `endpoint_type`, `model_type`, `vendor_configuration` (required),
        `endpoint_protocol`, `description`, `model_creation_parameters_schema`, `model_request_parameters_schema`.
        The answer has SGP's defaults filled in; a bad schema or an undeclared `${name}` placeholder is a
        `ValidationError` (INVALID_MODEL_TEMPLATE) that lists every problem in `detail`."""
        unknown = sorted(set(fields) - set(TEMPLATE_FIELDS))
        if unknown:
            raise TypeError(f"Unknown model template fields {unknown}; the fields are {list(TEMPLATE_FIELDS)}")
        sent = {**(dict(body) if body is not None else {}), **{k: v for k, v in fields.items() if v is not None}}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._http.request("POST", _collection(workspace), json=sent, headers=headers)

    def list(
        self,
        workspace: str,
        *,
        model_type: str | None = None,
        endpoint_type: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        """The workspace's templates, newest first."""
        params = {
            "model_type": model_type,
            "endpoint_type": endpoint_type,
            "name_prefix": name_prefix,
            "sort": sort,
            **filters,
        }
        return Pager(self._http, _collection(workspace), params, page_size)

    def list_all(
        self,
        workspace: str | None = None,
        *,
        model_type: str | None = None,
        endpoint_type: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        """The templates of every workspace you belong to (server admins: all), as SGP lists those of every account
        a user is associated with; `workspace` narrows it to one. Each has its `workspace`."""
        params = {
            "workspace": workspace,
            "model_type": model_type,
            "endpoint_type": endpoint_type,
            "name_prefix": name_prefix,
            "sort": sort,
            **filters,
        }
        return Pager(self._http, "/v1/model-templates", params, page_size)

    def get(self, workspace: str, name: str | None = None) -> Resource:
        return self._http.request("GET", self._path(workspace, name))

    def update(
        self,
        workspace: str,
        name: str | None = None,
        *,
        description: str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the description, the only field that changes (SGP templates are immutable: make a new one)."""
        body = {"description": description} if description is not None else {}
        headers = {"If-Match": if_match} if if_match is not None else {}
        return self._http.request("PATCH", self._path(workspace, name), json=body, headers=headers)

    def delete(self, workspace: str, name: str | None = None, *, if_match: str | None = None) -> None:
        """Delete a template; `ConflictError` (MODEL_TEMPLATE_IN_USE, naming them) while models made from it exist."""
        headers = {"If-Match": if_match} if if_match is not None else {}
        self._http.send("DELETE", self._path(workspace, name), headers=headers)
