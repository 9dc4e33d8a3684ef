"""Reading an adapter's files (adapter_config.json and the safetensors headers, never the tensors) wherever they are,
and checking them against the base model version with `modelyard.inspect.compat`."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from modelyard.inspect.compat import check_compatibility
from modelyard.inspect.errors import InspectError
from modelyard.inspect.peft import ADAPTER_CONFIG, load_adapter_config
from modelyard.inspect.safetensors import PREFETCH, parse_header
from modelyard.model.files import FileSource
from modelyard.model.tables import ModelVersion

MAX_ADAPTER_CONFIG_BYTES = 1024 * 1024
SAFETENSORS_SUFFIX = ".safetensors"


@dataclass
class Inspection:
    compatibility: dict[str, Any]
    lora_config: dict[str, Any] | None
    digest: str | None
    file_count: int = 0
    warnings: list[str] = field(default_factory=list)


def _digest(source: FileSource, files: list[Any]) -> str:
    manifest = []
    for f in files:
        sha = f.sha256
        if sha is None:
            h = hashlib.sha256()
            for chunk in source.iter_bytes(f.path):
                h.update(chunk)
            sha = h.hexdigest()
        manifest.append(f"{f.path}\t{f.size}\t{sha}\n")
    return hashlib.sha256("".join(sorted(manifest)).encode()).hexdigest()


def _base_name(version: ModelVersion | None, model_name: str | None) -> str | None:
    pinned = (version.source or {}).get("pinned", {}) if version is not None else {}
    return pinned.get("repo_id") or model_name


def inspect_adapter(
    source: FileSource,
    version: ModelVersion | None,
    finetuning_type: str,
    lora_config: dict[str, Any] | None,
    model_name: str | None,
    *,
    keep_lora_config: bool = False,
) -> Inspection:
    """The compatibility report of the adapter's files against `version` (unknown without a READY base config).
    Files that cannot be parsed make the adapter incompatible, with the reason; missing files are a SourceError."""
    files = source.list_files()
    if not files:
        return Inspection(
            {"status": "unknown", "base_version": None, "checks": [], "warnings": []}, lora_config, None, 0
        )
    by_path = {f.path: f for f in files}
    base_version = version.name if version is not None else None
    if ADAPTER_CONFIG not in by_path:
        report = {
            "status": "unknown",
            "base_version": base_version,
            "checks": [],
            "warnings": [f"No {ADAPTER_CONFIG} among the files: the adapter could not be checked"],
        }
        return Inspection(report, lora_config, _digest(source, files), len(files))
    try:
        entry = by_path[ADAPTER_CONFIG]
        if entry.size > MAX_ADAPTER_CONFIG_BYTES:
            raise InspectError(f"{ADAPTER_CONFIG} is {entry.size} bytes; at most {MAX_ADAPTER_CONFIG_BYTES}")
        adapter = load_adapter_config(source.read_all(ADAPTER_CONFIG, entry.size))
        tensors = []
        for path in sorted(p for p in by_path if p.endswith(SAFETENSORS_SUFFIX)):
            header = parse_header(
                functools.partial(source.read_range, path), by_path[path].size, name=path, prefetch=PREFETCH
            )
            tensors.extend(header.tensors)
    except InspectError as exc:
        unreadable: dict[str, Any] = {
            "status": "incompatible",
            "base_version": base_version,
            "warnings": [],
            "checks": [{"name": "peft_type", "ok": False, "message": str(exc)}],
        }
        return Inspection(unreadable, lora_config, _digest(source, files), len(files))
    base_config = version.base_config if version is not None else None
    result = check_compatibility(
        adapter,
        tensors,
        base_config,
        finetuning_type=finetuning_type,
        lora_config=lora_config,
        base_model_name=_base_name(version, model_name),
    )
    checked: dict[str, Any] = {**result.as_dict(), "base_version": base_version}
    checked.pop("lora_config", None)
    filled = lora_config if keep_lora_config or result.lora_config is None else dict(result.lora_config)
    return Inspection(checked, filled, _digest(source, files), len(files))
