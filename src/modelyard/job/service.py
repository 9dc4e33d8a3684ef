"""Enqueueing jobs, in the caller's transaction: the job exists exactly when the change that needs it commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from modelyard.db import writes
from modelyard.db.base import utcnow
from modelyard.job.tables import Job


def enqueue(
    target: Session | writes.DriverTransaction,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace_id: str | None = None,
    max_attempts: int | None = None,
    run_after: datetime | None = None,
) -> str:
    """Queue a job in `target`'s transaction (it runs once that commits); its id."""
    row = new_row(kind, payload, workspace_id=workspace_id, max_attempts=max_attempts, run_after=run_after)
    writes.insert(target, INSERT_JOB, [row])
    job_id: str = row["id"]
    return job_id


def new_row(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace_id: str | None = None,
    max_attempts: int | None = None,
    run_after: datetime | None = None,
) -> writes.Row:
    """A job's row as `enqueue` stores it, for a write that inserts it itself (modelyard.db.writes.Guarded)."""
    return INSERT_JOB.row(
        {
            "kind": kind,
            "payload": payload or {},
            "workspace_id": workspace_id,
            "max_attempts": max_attempts,
            "run_after": run_after or utcnow(),
        }
    )


# A prebuilt insert (modelyard.db.writes): every version created queues its validation.
INSERT_JOB = writes.Insert(Job.__table__)


def get_job(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)
