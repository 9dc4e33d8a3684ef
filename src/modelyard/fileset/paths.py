"""File paths inside a fileset: relative, normalised, and unable to leave the fileset."""

from __future__ import annotations

import posixpath

from modelyard.errors import BadRequest

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255


def _bad(path: str, reason: str) -> BadRequest:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return BadRequest(
        f"Invalid file path {shown!r}: {reason}",
        error_code="INVALID_PATH",
        solution_msg="Use a relative path like 'weights/model.safetensors' without '..', backslashes or NUL",
    )


def normalize(path: str) -> str:
    if not path:
        raise _bad(path, "it is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise _bad(path, f"it is longer than {MAX_PATH_LENGTH} characters")
    if "\x00" in path:
        raise _bad(path, "it contains NUL")
    if "\\" in path:
        raise _bad(path, "it contains a backslash")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise _bad(path, "it contains control characters")
    if path.startswith("/"):
        raise _bad(path, "it is absolute")
    segments = path.split("/")
    if ".." in segments:
        raise _bad(path, "it contains '..'")
    normal = posixpath.normpath(path)
    if normal in (".", "") or normal.startswith(("/", "..")):
        raise _bad(path, "it names no file inside the fileset")
    if any(len(segment) > MAX_SEGMENT_LENGTH for segment in normal.split("/")):
        raise _bad(path, f"a segment is longer than {MAX_SEGMENT_LENGTH} characters")
    return normal


def normalize_prefix(prefix: str) -> str:
    """A listing prefix: the same rules, but empty is allowed and a trailing '/' is kept."""
    if not prefix:
        return ""
    trailing = prefix.endswith("/")
    normal = normalize(prefix.rstrip("/") or ".") if prefix.strip("/") else ""
    return normal + "/" if trailing and normal else normal
