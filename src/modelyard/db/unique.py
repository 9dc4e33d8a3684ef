"""Uniqueness decided by the database: insert in a savepoint, and turn a constraint violation into the domain's
409, keeping the rest of the transaction (STYLE habit 3: never check-then-insert)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.db.base import Base
from modelyard.errors import ModelyardError


def insert_unique(session: Session, obj: Base, conflict: ModelyardError) -> None:
    """Add and flush `obj`; raise `conflict` if a unique constraint refuses it."""
    try:
        with session.begin_nested():
            session.add(obj)
    except IntegrityError as exc:
        raise conflict from exc
