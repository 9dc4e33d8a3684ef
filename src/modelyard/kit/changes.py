"""Applying the fields a PATCH names: only those that differ change, and the caller gets them back for its event."""

from __future__ import annotations

from typing import Any


def apply_changes(obj: object, changes: dict[str, Any]) -> dict[str, Any]:
    """Set each field of `changes` that differs from `obj`'s value; return the ones set."""
    applied = {key: value for key, value in changes.items() if getattr(obj, key) != value}
    for key, value in applied.items():
        setattr(obj, key, value)
    return applied
