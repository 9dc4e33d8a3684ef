"""The validation job of a model version: the path must exist and hold files; config.json, when there is one,
gives the spec; safetensors headers give the parameter count (read by range, never the tensors); every file is
hashed into the manifest, whose sha256 is the version's digest. Then READY, or FAILED with a message a person can
act on. The job may run twice (a worker died); `finish_validation` ignores a version that is already final."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from modelyard.inspect.config import load_config, model_spec
from modelyard.inspect.errors import InspectError
from modelyard.inspect.safetensors import PREFETCH, count_parameters, dominant_dtype, parse_header, weight_files
from modelyard.job.registry import JobContext, job_kind
from modelyard.model import repository, service
from modelyard.model.files import FileSource, SourceError, SourceFile, open_source
from modelyard.model.sources import SourceRef, parse_local_path, parse_model_path
from modelyard.model.tables import VersionStatus
from modelyard.storage import create_store

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _sha256(source: FileSource, file: SourceFile) -> str:
    digest = hashlib.sha256()
    for chunk in source.iter_bytes(file.path):
        digest.update(chunk)
    return digest.hexdigest()


def inspect_files(
    source: FileSource, files: list[SourceFile]
) -> tuple[list[tuple[str, int, str]], str, dict[str, Any], dict[str, Any] | None]:
    """(manifest, digest, spec, config.json) of a version's files."""
    by_path = {f.path: f for f in files}
    config: dict[str, Any] | None = None
    if CONFIG_FILE in by_path:
        entry = by_path[CONFIG_FILE]
        if entry.size > MAX_CONFIG_BYTES:
            raise InspectError(f"config.json is {entry.size} bytes; a model config is at most {MAX_CONFIG_BYTES}")
        config = load_config(source.read_all(CONFIG_FILE, entry.size))
    weights = weight_files(list(by_path), read_file=lambda p: source.read_all(p, by_path[p].size))
    headers = [
        parse_header(functools.partial(source.read_range, path), by_path[path].size, name=path, prefetch=PREFETCH)
        for path in weights
    ]
    num_parameters = count_parameters(headers) if headers else None
    dtype = dominant_dtype(headers) if headers else None
    spec = model_spec(config or {}, num_parameters=num_parameters, dtype=dtype) if config or headers else {}
    manifest = sorted((f.path, f.size, f.sha256 or _sha256(source, f)) for f in files)
    digest = hashlib.sha256("".join(f"{p}\t{s}\t{h}\n" for p, s, h in manifest).encode()).hexdigest()
    return manifest, digest, spec, config


def _mark_failed(ctx: JobContext, error: str) -> None:
    with ctx.transaction() as session:
        service.finish_validation(
            session, ctx.payload["version_id"], ok=False, message=f"Validation could not finish: {error}"
        )


@job_kind(service.VALIDATE_JOB, on_give_up=_mark_failed)
def validate_version(ctx: JobContext) -> dict[str, Any]:
    version_id = ctx.payload["version_id"]
    with ctx.db.reading() as reader:
        version = repository.read_version_to_validate(reader, version_id)
    if version is None or version["status"] != VersionStatus.CREATING.value:
        return {"skipped": version["status"] if version else "deleted"}
    model_path, local_path = version["model_path"], version["local_model_path"]
    shown = model_path or local_path
    try:
        ref: SourceRef = (
            parse_model_path(model_path, version["workspace"] or "", ["model_path"])
            if model_path
            else parse_local_path(local_path, ctx.settings.allowed_local_roots)
        )
        source = open_source(ref, shown, ctx.db, create_store(ctx.settings), ctx.settings)
        files = source.list_files()
        if not files:
            raise SourceError(f"The model path must exist and hold the model's files: '{shown}' is empty")
        manifest, digest, spec, config = inspect_files(source, files)
    except (SourceError, InspectError) as exc:
        return _failed(ctx, version_id, str(exc))
    except Exception as exc:
        if getattr(exc, "status_code", None) in (400, 404):  # a reference that stopped being valid
            return _failed(ctx, version_id, str(exc))
        raise
    result = {"status": "READY", "digest": digest, "files": len(manifest)}
    with ctx.transaction() as session:
        service.finish_validation(
            session,
            version_id,
            ok=True,
            files=manifest,
            digest=digest,
            spec=spec,
            config=config,
            source={"pinned": source.pinned()} if source.pinned() else None,
        )
        ctx.succeed(session, result)
    return result


def _failed(ctx: JobContext, version_id: str, message: str) -> dict[str, Any]:
    """The version FAILED with `message`: the job itself ends well, having settled the version."""
    result = {"status": "FAILED", "message": message}
    with ctx.transaction() as session:
        service.finish_validation(session, version_id, ok=False, message=message)
        ctx.succeed(session, result)
    return result
