"""Where a model version's files are: a fileset, an S3 prefix, a Hugging Face repository, or a local directory.

`parse_model_path` and `parse_local_path` check a reference when it is registered (syntax, and local paths against
MODELYARD_ALLOWED_LOCAL_ROOTS); whether it exists is found out later by the worker, as Huawei's API does."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelyard.errors import BadRequest, validation_error

_NAME = r"[\w\-.]{1,255}"
_FILESET_REF = re.compile(rf"^(?:(?P<ws>{_NAME})/)?(?P<fs>{_NAME})$")
_FILESET_URI = re.compile(rf"^fileset://(?P<ws>{_NAME})/(?P<fs>{_NAME})(?:/(?P<sub>.*))?$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
_HF_URI = re.compile(r"^hf://(?P<org>[\w\-.]{1,96})/(?P<name>[\w\-.]{1,96})(?:@(?P<rev>[\w\-./]{1,255}))?$")

SUPPORTED = "a fileset ('workspace/fileset' or 'fileset://workspace/fileset[/dir]'), 's3://bucket/prefix' or 'hf://org/name[@revision]'"


@dataclass(frozen=True)
class SourceRef:
    kind: Literal["fileset", "s3", "hf", "local"]
    workspace: str = ""
    fileset: str = ""
    subdir: str = ""
    bucket: str = ""
    prefix: str = ""
    repo_id: str = ""
    revision: str = ""
    path: str = ""

    def describe(self) -> str:
        if self.kind == "fileset":
            return f"fileset '{self.workspace}/{self.fileset}'" + (f" directory '{self.subdir}'" if self.subdir else "")
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        if self.kind == "hf":
            return f"hf://{self.repo_id}@{self.revision}"
        return self.path


def _clean_subdir(subdir: str, loc: list[str | int]) -> str:
    parts = [p for p in subdir.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or "\\" in subdir or "\x00" in subdir:
        raise validation_error(loc, "The directory inside the fileset may not contain '..', '\\' or NUL")
    return "/".join(parts)


def parse_model_path(value: str, workspace: str, loc: list[str | int]) -> SourceRef:
    """A `model_path` as registered; a bare fileset name means a fileset of `workspace`."""
    value = value.strip()
    if match := _FILESET_URI.match(value):
        return SourceRef(
            "fileset", workspace=match["ws"], fileset=match["fs"], subdir=_clean_subdir(match["sub"] or "", loc)
        )
    if value.startswith("s3://"):
        s3 = _S3_URI.match(value)
        if s3 is None:
            raise validation_error(loc, "An S3 path must look like 's3://bucket/prefix' with a valid bucket name")
        prefix = s3["prefix"] or ""
        if ".." in prefix.split("/"):
            raise validation_error(loc, "An S3 prefix may not contain '..'")
        return SourceRef("s3", bucket=s3["bucket"], prefix=prefix.strip("/"))
    if value.startswith("hf://"):
        hf = _HF_URI.match(value)
        if hf is None:
            raise validation_error(
                loc, "A Hugging Face path must look like 'hf://org/name' or 'hf://org/name@revision'"
            )
        return SourceRef("hf", repo_id=f"{hf['org']}/{hf['name']}", revision=hf["rev"] or "main")
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise validation_error(loc, f"Unsupported path scheme '{scheme}://': use {SUPPORTED}")
    if match := _FILESET_REF.match(value):
        return SourceRef("fileset", workspace=match["ws"] or workspace, fileset=match["fs"])
    raise validation_error(loc, f"Invalid model path {value[:200]!r}: use {SUPPORTED}")


def parse_local_path(
    value: str, allowed_roots: list[Path], setting: str = "MODELYARD_ALLOWED_LOCAL_ROOTS"
) -> SourceRef:
    """A local directory; 400 unless it lies under one of the allowed roots (after resolving symlinks)."""
    if not allowed_roots:
        raise BadRequest(
            f"Local path '{value}' is not allowed: {setting} is empty, so the server accepts no local paths",
            error_code="LOCAL_PATH_NOT_ALLOWED",
            solution_msg=f"Upload the files into a fileset, or have the operator set {setting}",
        )
    if not value.startswith("/") or "\x00" in value:
        raise BadRequest(f"Local path '{value}' must be an absolute path", error_code="LOCAL_PATH_NOT_ALLOWED")
    resolved = Path(os.path.realpath(value))
    for root in allowed_roots:
        if resolved == root or resolved.is_relative_to(root):
            return SourceRef("local", path=str(resolved))
    raise BadRequest(
        f"Local path '{value}' is outside the directories allowed by {setting}",
        error_code="LOCAL_PATH_NOT_ALLOWED",
        solution_msg=f"Use a directory under {', '.join(str(r) for r in allowed_roots)}",
    )
