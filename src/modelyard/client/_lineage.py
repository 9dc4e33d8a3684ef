"""`client.datasets`, `client.prompts` and `client.fine_tuning_jobs`: the lineage records an adapter links to
(Cloudera's). They refer to each other, and to models, by name.

A record is named by its workspace and its name, given apart (`get("default", "tickets")`) or as one
"workspace/name" string (`get("default/tickets")`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from modelyard.client._adapters import resource_ref
from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._pager import Pager


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _timestamp(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class _Records:
    """create / list / get / update / delete of one kind of lineage record under `/v1/workspaces/{ws}/<route>`."""

    route = ""
    what = ""

    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport

    def _collection(self, workspace: str) -> str:
        return f"/v1/workspaces/{segment(workspace)}/{self.route}"

    def _path(self, workspace: str, name: str | None) -> str:
        ws, found = resource_ref(workspace, name, self.what)
        return f"{self._collection(ws)}/{segment(found)}"

    def _create(self, workspace: str, body: dict[str, Any], idempotency_key: str | None) -> Resource:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._http.request("POST", self._collection(workspace), json=body, headers=headers)

    def _update(self, workspace: str, name: str | None, body: dict[str, Any], if_match: str | None) -> Resource:
        headers = {"If-Match": if_match} if if_match is not None else {}
        return self._http.request("PATCH", self._path(workspace, name), json=body, headers=headers)

    def _list(self, workspace: str, params: Mapping[str, Any], page_size: int | None) -> Pager:
        return Pager(self._http, self._collection(workspace), params, page_size)

    def get(self, workspace: str, name: str | None = None) -> Resource:
        return self._http.request("GET", self._path(workspace, name))

    def delete(self, workspace: str, name: str | None = None, *, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match is not None else {}
        self._http.send("DELETE", self._path(workspace, name), headers=headers)


class Datasets(_Records):
    """`/v1/workspaces/{ws}/datasets`: the data adapters were trained on, with where it is (`source`) and its
    `features` (column names)."""

    route = "datasets"
    what = "dataset"

    def create(
        self,
        workspace: str,
        name: str,
        *,
        source: Mapping[str, str],
        description: str = "",
        features: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Resource:
        """`source` is {type: fileset | huggingface | local | url, ref}, e.g. {"type": "huggingface", "ref":
        "org/tickets"}; `features` the dataset's column names."""
        body = _given(
            name=name,
            description=description,
            source=dict(source),
            features=list(features) if features is not None else None,
        )
        return self._create(workspace, body, idempotency_key)

    def list(
        self,
        workspace: str,
        *,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        return self._list(workspace, {"name_prefix": name_prefix, "sort": sort, **filters}, page_size)

    def update(
        self,
        workspace: str,
        name: str | None = None,
        *,
        description: str | None = None,
        features: Iterable[str] | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None); `features` replaces every feature."""
        body = _given(description=description, features=list(features) if features is not None else None)
        return self._update(workspace, name, body, if_match)


class Prompts(_Records):
    """`/v1/workspaces/{ws}/prompts`: the templates that turned a dataset's rows into training examples."""

    route = "prompts"
    what = "prompt"

    def create(
        self,
        workspace: str,
        name: str,
        *,
        prompt_template: str,
        input_template: str,
        completion_template: str,
        dataset: str | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Resource:
        """`dataset` is the name of a dataset of the same workspace."""
        body = _given(
            name=name,
            description=description,
            dataset=dataset,
            prompt_template=prompt_template,
            input_template=input_template,
            completion_template=completion_template,
        )
        return self._create(workspace, body, idempotency_key)

    def list(
        self,
        workspace: str,
        *,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        return self._list(workspace, {"name_prefix": name_prefix, "sort": sort, **filters}, page_size)

    def update(
        self,
        workspace: str,
        name: str | None = None,
        *,
        description: str | None = None,
        dataset: str | None = None,
        prompt_template: str | None = None,
        input_template: str | None = None,
        completion_template: str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None)."""
        body = _given(
            description=description,
            dataset=dataset,
            prompt_template=prompt_template,
            input_template=input_template,
            completion_template=completion_template,
        )
        return self._update(workspace, name, body, if_match)


class FineTuningJobs(_Records):
    """`/v1/workspaces/{ws}/fine-tuning-jobs`: the training runs that produced adapters: base model, dataset,
    prompt, `dataset_fraction` (default 1.0), `train_test_split` (default 0.9), hyperparameters and `status`
    (PENDING, RUNNING, COMPLETED, FAILED, CANCELED)."""

    route = "fine-tuning-jobs"
    what = "fine-tuning job"

    def create(
        self,
        workspace: str,
        name: str,
        *,
        base_model: str,
        base_model_version: str | None = None,
        dataset: str | None = None,
        prompt: str | None = None,
        adapter_name: str | None = None,
        dataset_fraction: float | None = None,
        train_test_split: float | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        status: str | None = None,
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Resource:
        """`base_model` is 'name' (in `workspace`) or 'workspace/name'; `dataset` and `prompt` are names of
        records of the same workspace; `adapter_name` the adapter the job is meant to produce. Fractions are in
        (0, 1]; `status` defaults to PENDING. Timestamps must carry a time zone."""
        body = _given(
            name=name,
            description=description,
            base_model=base_model,
            base_model_version=base_model_version,
            dataset=dataset,
            prompt=prompt,
            adapter_name=adapter_name,
            dataset_fraction=dataset_fraction,
            train_test_split=train_test_split,
            hyperparameters=dict(hyperparameters) if hyperparameters is not None else None,
            status=status,
            started_at=_timestamp(started_at),
            finished_at=_timestamp(finished_at),
        )
        return self._create(workspace, body, idempotency_key)

    def list(
        self,
        workspace: str,
        *,
        status: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        params = {"status": status, "name_prefix": name_prefix, "sort": sort, **filters}
        return self._list(workspace, params, page_size)

    def update(
        self,
        workspace: str,
        name: str | None = None,
        *,
        description: str | None = None,
        status: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None); `hyperparameters` replaces them all."""
        body = _given(
            description=description,
            status=status,
            hyperparameters=dict(hyperparameters) if hyperparameters is not None else None,
            started_at=_timestamp(started_at),
            finished_at=_timestamp(finished_at),
        )
        return self._update(workspace, name, body, if_match)
