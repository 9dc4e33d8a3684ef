"""`client.adapters`: fine-tuned adapters (LoRA, DoRA, P-tuning, ...) bound to a base model, the report of their
check against the base model's files, and `add_dir`, which uploads a local adapter directory and registers it.

An adapter is named by its workspace and its name, given apart (`get("default", "support-lora")`) or as one
"workspace/name" string (`get("default/support-lora")`), the form the CLI uses."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from modelyard.client._filesets import Filesets, ProgressCallback
from modelyard.client._http import HTTPTransport, Resource, segment
from modelyard.client._models import split_model
from modelyard.client._pager import Pager
from modelyard.client.errors import ConflictError

ADAPTER_CONFIG = "adapter_config.json"

# PEFT's `peft_type` (adapter_config.json) -> the usual `finetuning_type`. A LoRA with `use_dora` is a DoRA.
PEFT_FINETUNING_TYPES: Mapping[str, str] = {
    "LORA": "lora",
    "ADALORA": "adalora",
    "P_TUNING": "p_tuning",
    "PROMPT_TUNING": "prompt_tuning",
    "MULTITASK_PROMPT_TUNING": "prompt_tuning",
    "PREFIX_TUNING": "prefix_tuning",
}


def resource_ref(workspace: str, name: str | None, what: str) -> tuple[str, str]:
    """(workspace, name) from the two given apart, or from one 'workspace/name' in `workspace` when `name` is None."""
    if name is None:
        if not isinstance(workspace, str) or workspace.count("/") != 1 or "" in workspace.split("/"):
            raise ValueError(f"Expected the {what} as 'workspace/name', got {workspace!r}")
        ws, found = workspace.split("/")
        return ws, found
    if "/" in workspace:
        raise ValueError(
            f"Give the {what} either as workspace and name, or as one 'workspace/name', not {workspace!r} and {name!r}"
        )
    return workspace, name


def _qualified(ref: str, default_workspace: str, what: str) -> tuple[str, str]:
    """'name' (in `default_workspace`) or 'workspace/name' as (workspace, name)."""
    parts = ref.split("/") if isinstance(ref, str) else []
    if len(parts) == 1 and parts[0]:
        return default_workspace, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f"Expected the {what} as 'name' or 'workspace/name', got {ref!r}")


def finetuning_type_of(local_dir: str | os.PathLike[str]) -> str:
    """The `finetuning_type` an adapter directory's adapter_config.json implies: its `peft_type` LORA as lora (dora
    when `use_dora`), ADALORA as adalora, P_TUNING as p_tuning, PROMPT_TUNING as prompt_tuning, PREFIX_TUNING as
    prefix_tuning. A `ValueError` when the file is missing, unreadable or names another PEFT type: then pass
    `finetuning_type=` yourself."""
    path = Path(local_dir) / ADAPTER_CONFIG
    hint = "name the finetuning type explicitly (e.g. lora)"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist, so the adapter's type is unknown; {hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} cannot be read as JSON ({exc}); fix it, or {hint}") from None
    peft_type = config.get("peft_type") if isinstance(config, dict) else None
    if not isinstance(peft_type, str):
        raise ValueError(f"{path} has no 'peft_type'; {hint}")
    finetuning_type = PEFT_FINETUNING_TYPES.get(peft_type.upper())
    if finetuning_type is None:
        raise ValueError(f"{path} names the PEFT type {peft_type!r}, which has no default finetuning type; {hint}")
    if finetuning_type == "lora" and config.get("use_dora") is True:
        return "dora"
    return finetuning_type


def _model_registry(value: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"uri": value}
    return dict(value)


def _adapter_path(workspace: str, name: str) -> str:
    return f"/v1/workspaces/{segment(workspace)}/adapters/{segment(name)}"


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


class Adapters:
    """`/v1/workspaces/{ws}/adapters`: adapters on base models, with `compatibility`, the report of their check
    against the base model version's files ({status: compatible | incompatible | unknown, base_version, checks:
    [{name, ok, message}], warnings}).

    An adapter the server finds incompatible is refused with `ValidationError` `ADAPTER_INCOMPATIBLE`, whose
    `detail` lists each failing check as {loc: ["compatibility", <check>], msg, type: "compatibility"}, unless
    `allow_incompatible=True`, which stores it disabled."""

    def __init__(self, transport: HTTPTransport, filesets: Filesets) -> None:
        self._http = transport
        self._filesets = filesets

    def create(
        self,
        workspace: str,
        name: str,
        *,
        model: str,
        finetuning_type: str,
        fileset: str | None = None,
        location: str | None = None,
        huggingface_name: str | None = None,
        model_registry: Mapping[str, Any] | str | None = None,
        description: str = "",
        enabled: bool = True,
        lora_config: Mapping[str, Any] | None = None,
        model_version: str | None = None,
        fine_tuning_job: str | None = None,
        prompt: str | None = None,
        allow_incompatible: bool = False,
        idempotency_key: str | None = None,
    ) -> Resource:
        """Register an adapter on the base model `model` ('name' in `workspace`, or 'workspace/name'), from exactly
        one source: `fileset` ('name' or 'workspace/name'), `location` (a directory on the server under
        MODELYARD_ALLOWED_LOCAL_ROOTS), `huggingface_name` ('org/name' or 'org/name@revision', checked later by
        the worker) or `model_registry` ({uri: 'models:/name/version', tracking_uri?}, or the uri alone).

        Files that can be read now are checked against the base model's current version (or `model_version`)
        before the answer; `lora_config` {rank, alpha?, dropout?, target_modules?} is filled from the files when
        not given. `finetuning_type` is one of NeMo's values, in any case (lora, dora, p_tuning, ...)."""
        body: dict[str, Any] = {
            "name": name,
            "model": model,
            "finetuning_type": finetuning_type,
            "description": description,
            "enabled": enabled,
        }
        optional = {
            "fileset": fileset,
            "location": location,
            "huggingface_name": huggingface_name,
            "model_registry": _model_registry(model_registry),
            "lora_config": dict(lora_config) if lora_config is not None else None,
            "model_version": model_version,
            "fine_tuning_job": fine_tuning_job,
            "prompt": prompt,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._http.request(
            "POST",
            f"/v1/workspaces/{segment(workspace)}/adapters",
            json=body,
            params={"allow_incompatible": True} if allow_incompatible else None,
            headers=headers,
        )

    def add_dir(
        self,
        local_dir: str | os.PathLike[str],
        model: str,
        *,
        name: str,
        finetuning_type: str | None = None,
        workspace: str | None = None,
        fileset: str | None = None,
        progress: ProgressCallback | None = None,
        description: str = "",
        enabled: bool = True,
        lora_config: Mapping[str, Any] | None = None,
        model_version: str | None = None,
        fine_tuning_job: str | None = None,
        prompt: str | None = None,
        allow_incompatible: bool = False,
    ) -> Resource:
        """Upload a local adapter directory (adapter_config.json and its weights, as PEFT's `save_pretrained`
        writes them) into a fileset and register it on the base model `model` ('workspace/name').

        The adapter goes into `workspace` (default: the model's). `fileset` ('name' in that workspace, or
        'workspace/name') defaults to one named after the adapter; it is created with purpose "model", or reused
        when it exists, and `filesets.upload_dir` uploads the directory into it (unchanged files are skipped;
        `progress` receives its `TransferEvent`s). `finetuning_type` defaults to what adapter_config.json says
        (see `finetuning_type_of`).

        These are separate requests: when the registration is refused (e.g. `ValidationError`
        `ADAPTER_INCOMPATIBLE`, whose `detail` names the failing checks), the fileset and its files stay, so the
        adapter can be registered again (say with `allow_incompatible=True`) without uploading again."""
        root = Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"Not a directory: {root}")
        model_workspace, model_name = split_model(model)
        adapter_workspace = workspace or model_workspace
        chosen_type = finetuning_type or finetuning_type_of(root)
        fs_workspace, fs_name = _qualified(fileset or name, adapter_workspace, "fileset")
        try:
            self._filesets.create(fs_workspace, fs_name, f"Files of adapter '{adapter_workspace}/{name}'", "model")
        except ConflictError as exc:
            if exc.error_code != "FILESET_ALREADY_EXISTS":
                raise
        fileset_ref = f"{fs_workspace}/{fs_name}"
        self._filesets.upload_dir(root, fileset_ref, progress=progress)
        return self.create(
            adapter_workspace,
            name,
            model=f"{model_workspace}/{model_name}",
            finetuning_type=chosen_type,
            fileset=fileset_ref,
            description=description,
            enabled=enabled,
            lora_config=lora_config,
            model_version=model_version,
            fine_tuning_job=fine_tuning_job,
            prompt=prompt,
            allow_incompatible=allow_incompatible,
        )

    def list(
        self,
        workspace: str,
        *,
        model: str | None = None,
        enabled: bool | None = None,
        finetuning_type: str | None = None,
        fileset: str | None = None,
        name_prefix: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        **filters: Any,
    ) -> Pager:
        """The workspace's adapters, newest first. `model` and `fileset` are 'name' (in `workspace`) or
        'workspace/name'; `finetuning_type` is matched in any case."""
        params = {
            "model": model,
            "enabled": enabled,
            "finetuning_type": finetuning_type,
            "fileset": fileset,
            "name_prefix": name_prefix,
            "sort": sort,
            **filters,
        }
        return Pager(self._http, f"/v1/workspaces/{segment(workspace)}/adapters", params, page_size)

    def get(self, workspace: str, name: str | None = None) -> Resource:
        """One adapter, with `model` ('workspace/name'), `model_version`, its source, `lora_config`, `digest` and
        `compatibility`."""
        return self._http.request("GET", _adapter_path(*resource_ref(workspace, name, "adapter")))

    def update(
        self,
        workspace: str,
        name: str | None = None,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        fileset: str | None = None,
        fine_tuning_job: str | None = None,
        prompt: str | None = None,
        if_match: str | None = None,
    ) -> Resource:
        """Change the fields given (not None). A new `fileset` is checked like a new adapter (`ValidationError`
        ADAPTER_INCOMPATIBLE if its files do not fit); an adapter that failed its check cannot be enabled
        (`ConflictError` ADAPTER_INCOMPATIBLE). The name, model, finetuning_type, model_version and lora_config
        never change: register a new adapter instead."""
        body = {
            k: v
            for k, v in {
                "description": description,
                "enabled": enabled,
                "fileset": fileset,
                "fine_tuning_job": fine_tuning_job,
                "prompt": prompt,
            }.items()
            if v is not None
        }
        path = _adapter_path(*resource_ref(workspace, name, "adapter"))
        return self._http.request("PATCH", path, json=body, headers=_if_match(if_match))

    def enable(self, workspace: str, name: str | None = None, *, if_match: str | None = None) -> Resource:
        """Enable the adapter, so serving engines load it (`update(enabled=True)`)."""
        return self.update(workspace, name, enabled=True, if_match=if_match)

    def disable(self, workspace: str, name: str | None = None, *, if_match: str | None = None) -> Resource:
        """Disable the adapter: it stays registered, and serving engines unload it (`update(enabled=False)`)."""
        return self.update(workspace, name, enabled=False, if_match=if_match)

    def delete(self, workspace: str, name: str | None = None, *, if_match: str | None = None) -> None:
        """Delete the adapter's registration; its fileset and files stay."""
        path = _adapter_path(*resource_ref(workspace, name, "adapter"))
        self._http.send("DELETE", path, headers=_if_match(if_match))

    def dataset_split(self, workspace: str, name: str | None = None) -> Resource:
        """{dataset_fraction, train_test_split, fine_tuning_job}: those of the adapter's fine-tuning job, or the
        defaults 1.0 and 0.9 (and `fine_tuning_job` None) when it has none."""
        path = _adapter_path(*resource_ref(workspace, name, "adapter"))
        return self._http.request("GET", f"{path}/dataset-split")

    def lineage(self, workspace: str, name: str | None = None) -> Resource:
        """The graph dataset -> prompt -> fine-tuning job -> adapter -> base model version -> model, as
        {nodes: [{kind, name, id, workspace}], edges: [{source, target, relation}]}; an edge's source and target
        are "<kind>:<id>"."""
        path = _adapter_path(*resource_ref(workspace, name, "adapter"))
        return self._http.request("GET", f"{path}/lineage")


def failing_checks(detail: Any) -> list[dict[str, Any]]:
    """The failing checks of an ADAPTER_INCOMPATIBLE error's `detail`, as [{name, ok: False, message}]."""
    found = []
    for item in detail if isinstance(detail, Iterable) and not isinstance(detail, str | bytes | Mapping) else []:
        if isinstance(item, Mapping):
            loc = list(item.get("loc") or [])
            check = str(loc[-1]) if loc else ""
            found.append({"name": check, "ok": False, "message": str(item.get("msg", ""))})
    return found
