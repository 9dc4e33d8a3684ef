"""`client.models` and `client.models.versions`: LLMs, their versions (created asynchronously: CREATING, then READY
or FAILED once a worker has checked the files), the current version, and the manifest of a version's files.

A model is named by its workspace and its name, given apart (`get("default", "llama")`) or as one
"workspace/model" string (`get("default/llama")`), the form a version's `model` field and the CLI use."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._pager import Pager
from modelyard.client.errors import NotFoundError, WaitTimeoutError

FINAL_STATUSES = frozenset({"READY", "FAILED"})
DEFAULT_WAIT_TIMEOUT = 3600.0
DEFAULT_POLL = 1.0
_FIRST_POLL = 0.25
_FLAT_VERSION_KEYS = frozenset({"name", "description", "base_model_type", "model_path", "local_model_path"})

WaitProgress = Callable[[Resource], None]


def split_model(ref: str) -> tuple[str, str]:
    """'workspace/model' as (workspace, model): exactly one '/', with a non-empty part on each side."""
    if not isinstance(ref, str) or ref.count("/") != 1 or ref.startswith("/") or ref.endswith("/"):
        raise ValueError(f"Expected a model as 'workspace/name' (e.g. 'default/llama-3'), got {ref!r}")
    workspace, name = ref.split("/")
    return workspace, name


def model_ref(workspace: str, model: str | None) -> tuple[str, str]:
    """(workspace, model) from the two given apart, or from 'workspace/model' in `workspace` when `model` is None."""
    if model is None:
        return split_model(workspace)
    if "/" in workspace:
        raise ValueError(
            f"Give the model either as workspace and name, or as one 'workspace/name', not {workspace!r} and {model!r}"
        )
    return workspace, model


def _version_ref(workspace: str, model: str, version: str | None) -> tuple[str, str, str]:
    """(workspace, model, version) from `(ws, model, version)` or `("ws/model", version)`."""
    if version is None:
        if not isinstance(workspace, str) or workspace.count("/") != 1:
            raise ValueError(
                "Expected the model as 'workspace/name' (e.g. 'default/llama-3') then the version, or the workspace, "
                f"the model and the version; got {workspace!r}, {model!r}"
            )
        ws, name = split_model(workspace)
        return ws, name, model
    ws, name = model_ref(workspace, model)
    return ws, name, version


def _model_path(workspace: str, model: str) -> str:
    return f"/v1/workspaces/{segment(workspace)}/models/{segment(model)}"


def _version_path(workspace: str, model: str, version: str) -> str:
    return f"{_model_path(workspace, model)}/versions/{segment(version)}"


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key is not None else {}


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def version_body(
    base_model_type: str,
    model_path: str | None = None,
    local_model_path: str | None = None,
    name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The API's body of a new version: {name?, description?, config: {llm_model_config: {...}}}."""
    config = _given(base_model_type=base_model_type, model_path=model_path, local_model_path=local_model_path)
    return {**_given(name=name, description=description), "config": {"llm_model_config": config}}


def _version_arg(version: Mapping[str, Any]) -> dict[str, Any]:
    """A `version=` argument: the API's shape (with `config`) as is, or the flat {base_model_type, model_path |
    local_model_path, name?, description?}."""
    if "config" in version:
        return dict(version)
    unknown = set(version) - _FLAT_VERSION_KEYS
    if unknown or "base_model_type" not in version:
        raise ValueError(
            "version= takes {base_model_type, model_path or local_model_path, name?, description?} or the API's "
            f"{{name?, description?, config: {{llm_model_config: {{...}}}}}}; got the keys {sorted(version)}"
        )
    return version_body(**version)


def _label_filter(label: Mapping[str, str] | Iterable[str] | str | None) -> list[str] | None:
    """`?label=key:value`, repeated: from a dict, a list of 'key:value' strings, or one such string."""
    if label is None:
        return None
    if isinstance(label, str):
        return [label]
    if isinstance(label, Mapping):
        return [f"{key}:{value}" for key, value in label.items()]
    return list(label)


class ModelVersions:
    """`/v1/workspaces/{ws}/models/{model}/versions`: the versions of a model, named by their version name.

    Each method takes the model as `workspace, model` or as one 'workspace/model' string, then the version:
    `get("default", "llama", "v1")` or `get("default/llama", "v1")`."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport

    def create(
        self,
        workspace: str,
        model: str | None = None,
        *,
        base_model_type: str,
        model_path: str | None = None,
        local_model_path: str | None = None,
        name: str | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Resource:
        """A new version, answered at once with status CREATING; a worker then checks its files and sets READY or
        FAILED (see `wait()`). Give exactly one of `model_path` (a fileset 'ws/fileset' or
        'fileset://ws/fileset/dir', 's3://bucket/prefix', 'hf://org/name[@revision]') and `local_model_path` (a
        directory under the server's MODELYARD_ALLOWED_LOCAL_ROOTS). `name` defaults to v1, v2, ..."""
        ws, name_of_model = model_ref(workspace, model)
        body = version_body(base_model_type, model_path, local_model_path, name, description)
        return self._http.request(
            "POST", f"{_model_path(ws, name_of_model)}/versions", json=body, headers=_idempotency(idempotency_key)
        )

    def list(
        self,
        workspace: str,
        model: str | None = None,
        *,
        status: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        """The model's versions, newest first; `status` is CREATING, READY or FAILED."""
        ws, name = model_ref(workspace, model)
        params = {"status": status, "name_prefix": name_prefix, "sort": sort, **filters}
        return Pager(self._http, f"{_model_path(ws, name)}/versions", params, page_size)

    def get(self, workspace: str, model: str, version: str | None = None) -> Resource:
        """One version: `status`, `status_message`, `config`, `spec`, `digest`, `file_count`, `is_current`, ..."""
        return self._http.request("GET", _version_path(*_version_ref(workspace, model, version)))

    def update(
        self,
        workspace: str,
        model: str,
        version: str | None = None,
        *,
        description: str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the description (the only field of a version that changes)."""
        return self._http.request(
            "PATCH",
            _version_path(*_version_ref(workspace, model, version)),
            json=_given(description=description),
            headers=_if_match(if_match),
        )

    def delete(self, workspace: str, model: str, version: str | None = None, *, if_match: str | None = None) -> None:
        """Delete a version; refused (409 VERSION_IN_USE) while it is current or adapters were trained on it."""
        self._http.send("DELETE", _version_path(*_version_ref(workspace, model, version)), headers=_if_match(if_match))

    def files(
        self,
        workspace: str,
        model: str,
        version: str | None = None,
        *,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Pager:
        """The manifest of a READY version: {path, size, sha256} of every file, by path."""
        path = _version_path(*_version_ref(workspace, model, version))
        return Pager(self._http, f"{path}/files", {"sort": sort}, page_size)

    def wait(
        self,
        workspace: str,
        model: str,
        version: str | None = None,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll: float = DEFAULT_POLL,
        progress: WaitProgress | None = None,
    ) -> Resource:
        """Poll the version until its status is final, and return it: READY, or FAILED with a `status_message`
        that says why. A FAILED version is returned, not raised: check `version["status"]`.

        Polls quickly at first, then every `poll` seconds; `progress`, when given, is called with the version as
        each answer comes. After `timeout` seconds (None: no limit) raises `WaitTimeoutError`, whose `version` is
        the last answer; the version itself is unaffected and may still become final later."""
        if poll <= 0:
            raise ValueError(f"poll must be a positive number of seconds, not {poll!r}")
        ws, name, version_name = _version_ref(workspace, model, version)
        started = time.monotonic()
        interval = min(_FIRST_POLL, poll)
        while True:
            found = self._http.request("GET", _version_path(ws, name, version_name))
            if progress is not None:
                progress(found)
            if found.get("status") in FINAL_STATUSES:
                return found
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise WaitTimeoutError(
                    f"Version '{version_name}' of model '{ws}/{name}' is still {found.get('status')} after "
                    f"{waited:.0f} s",
                    error_code="WAIT_TIMEOUT",
                    solution_msg="Wait longer, and check that the server runs a worker (`modelyard serve` runs one; "
                    "`modelyard worker` runs more)",
                    version=found,
                )
            pause = interval if timeout is None else min(interval, timeout - waited)
            time.sleep(max(pause, 0.0))
            interval = min(interval * 2, poll)


class Models:
    """`/v1/workspaces/{ws}/models`: models (model_type, display_name, visibility, labels, cards, ...), their
    current version and its `spec`. `versions` holds their versions.

    Methods that name an existing model take it as `workspace, model` or as one 'workspace/model' string (a
    `ValueError` if it is not exactly that)."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._http = transport
        self.versions = ModelVersions(transport)

    def create(
        self,
        workspace: str,
        name: str,
        *,
        description: str | None = None,
        model_type: str | None = None,
        display_name: str | None = None,
        visibility: str | None = None,
        labels: Mapping[str, str] | None = None,
        base_model_metadata: Mapping[str, Any] | None = None,
        model_card: Mapping[str, Any] | None = None,
        training_data_card: Mapping[str, Any] | None = None,
        version: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        model_template: str | None = None,
        model_creation_parameters: Mapping[str, Any] | None = None,
    ) -> Resource:
        """A new model, with a first version when `version` is given: {base_model_type, model_path or
        local_model_path, name?, description?} (or the API's {name?, description?, config: {llm_model_config}}).
        The model and its version are created in one request; the answer is the model with `new_version`
        (status CREATING). `model_type` defaults to GENERIC, `visibility` to PRIVATE.

        `model_template` ('template' in the same workspace, or 'workspace/template') makes the model from a
        template: it takes the template's `model_type`, and `model_creation_parameters` must satisfy the template's
        creation schema. Values that spell the declared type are read as it ("5" as the int 5), each listed in the
        answer's `coercions`; anything else is a `ValidationError` (INVALID_MODEL_CREATION_PARAMETERS) whose
        `detail` has one {loc, msg, type} per offending parameter."""
        body = _given(
            name=name,
            description=description,
            model_type=model_type,
            display_name=display_name,
            visibility=visibility,
            labels=dict(labels) if labels is not None else None,
            base_model_metadata=dict(base_model_metadata) if base_model_metadata is not None else None,
            model_card=dict(model_card) if model_card is not None else None,
            training_data_card=dict(training_data_card) if training_data_card is not None else None,
            version=_version_arg(version) if version is not None else None,
            model_template=model_template,
            model_creation_parameters=(
                dict(model_creation_parameters) if model_creation_parameters is not None else None
            ),
        )
        return self._http.request(
            "POST", f"/v1/workspaces/{segment(workspace)}/models", json=body, headers=_idempotency(idempotency_key)
        )

    def list(
        self,
        workspace: str,
        *,
        model_type: str | None = None,
        visibility: str | None = None,
        name_prefix: str | None = None,
        label: Mapping[str, str] | Iterable[str] | str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        """The workspace's models, newest first. `label` keeps the models that have every label given: a dict
        ({"team": "nlp"}), a list of 'key:value' strings, or one such string."""
        params = {
            "model_type": model_type,
            "visibility": visibility,
            "name_prefix": name_prefix,
            "label": _label_filter(label),
            "sort": sort,
            **filters,
        }
        return Pager(self._http, f"/v1/workspaces/{segment(workspace)}/models", params, page_size)

    def get(self, workspace: str, model: str | None = None) -> Resource:
        """The model with `current_version` {id, name, status, digest} and `spec` (the current version's)."""
        return self._http.request("GET", _model_path(*model_ref(workspace, model)))

    def update(
        self,
        workspace: str,
        model: str | None = None,
        *,
        description: str | None = None,
        model_type: str | None = None,
        display_name: str | None = None,
        visibility: str | None = None,
        labels: Mapping[str, str] | None = None,
        base_model_metadata: Mapping[str, Any] | None = None,
        model_card: Mapping[str, Any] | None = None,
        training_data_card: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None; `labels` replaces every label); `if_match` is an ETag from `get()`.
        To rename a model or switch its current version, see `replace()` and `set_current()`."""
        body = _given(
            description=description,
            model_type=model_type,
            display_name=display_name,
            visibility=visibility,
            labels=dict(labels) if labels is not None else None,
            base_model_metadata=dict(base_model_metadata) if base_model_metadata is not None else None,
            model_card=dict(model_card) if model_card is not None else None,
            training_data_card=dict(training_data_card) if training_data_card is not None else None,
        )
        return self._http.request(
            "PATCH", _model_path(*model_ref(workspace, model)), json=body, headers=_if_match(if_match)
        )

    def replace(
        self,
        workspace: str,
        model: str | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        current_version_id: str | None = None,
        version: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Huawei's UpdateModelDefinition (PUT), in one request: rename, describe, make the version with id
        `current_version_id` current (it must be READY: `ConflictError` VERSION_NOT_READY otherwise), and/or add
        `version` (as in `create()`). Answers the model with `new_version` (None when no version was added)."""
        body = _given(
            name=name,
            description=description,
            current_version_id=current_version_id,
            version=_version_arg(version) if version is not None else None,
        )
        return self._http.request(
            "PUT", _model_path(*model_ref(workspace, model)), json=body, headers=_if_match(if_match)
        )

    def set_current(
        self, workspace: str, model: str, version: str | None = None, *, if_match: str | None = None
    ) -> Resource:
        """Make a version current, named by its name or its id: `set_current("default", "llama", "v2")` or
        `set_current("default/llama", "v2")`. Only a READY version of this model can be current: `ConflictError`
        VERSION_NOT_READY (a FAILED or CREATING version) or VERSION_NOT_OF_MODEL otherwise, and the current version
        stays as it was. Answers the model."""
        ws, name, chosen = _version_ref(workspace, model, version)
        try:
            version_id = str(self._http.request("GET", _version_path(ws, name, chosen))["id"])
        except NotFoundError as exc:
            if exc.error_code != "VERSION_NOT_FOUND":
                raise
            version_id = chosen  # not a name: perhaps an id; the server says so if it is not one of this model
        return self.replace(ws, name, current_version_id=version_id, if_match=if_match)

    def delete(
        self, workspace: str, model: str | None = None, *, cascade: bool = False, if_match: str | None = None
    ) -> None:
        """Delete the model and its versions; refused (409) while adapters refer to it, unless `cascade`, which
        deletes them too (each recorded in the event log)."""
        params = {"cascade": True} if cascade else None
        self._http.send("DELETE", _model_path(*model_ref(workspace, model)), params=params, headers=_if_match(if_match))

    # -- made from a template (SGP) --------------------------------------------------------------------------------

    def validate_request(
        self,
        workspace: str,
        model: str | Mapping[str, Any] | None = None,
        bindings: Mapping[str, Any] | None = None,
    ) -> Resource:
        """Check request parameters against the model's template: `validate_request("ws/model", {"lang": "en"})`
        or `validate_request("ws", "model", {...})`. Answers {model_request_parameters: {bindings}, coercions}
        with the bindings normalised ("5" read as 5 for an int); a `ValidationError`
        (INVALID_MODEL_REQUEST_PARAMETERS) lists every offending parameter in `detail`. `bindings=None` sends no
        `model_request_parameters` at all (refused when the template declares request parameters)."""
        if isinstance(model, Mapping):  # validate_request("ws/model", {...})
            if bindings is not None:
                raise ValueError(
                    "Give the bindings once: validate_request('ws/model', {...}) or ('ws', 'model', {...})"
                )
            model, bindings = None, model
        ws, name = model_ref(workspace, model)
        body = {"model_request_parameters": {"bindings": dict(bindings)}} if bindings is not None else {}
        return self._http.request("POST", f"{_model_path(ws, name)}/validate-request", json=body)

    def request_schema(self, workspace: str, model: str | None = None) -> Resource:
        """The JSON Schema of a whole request to the model, derived from its `model_type` as SGP does, with
        `model_request_parameters` ({"bindings": {...}}) required when its template declares request parameters."""
        return self._http.request("GET", f"{_model_path(*model_ref(workspace, model))}/request-schema")

    def launch_config(self, workspace: str, model: str | None = None) -> Resource:
        """The launch configuration of a model made from a template: the template's `vendor_configuration` with
        every `${name}` placeholder replaced by the model's creation parameter and each parameter exported in
        `bundle_config.env`; `ConflictError` MODEL_TEMPLATE_GONE when the template was deleted with its workspace."""
        return self._http.request("GET", f"{_model_path(*model_ref(workspace, model))}/launch-config")
