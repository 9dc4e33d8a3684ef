"""SQL of the job queue. A claim is one write transaction: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers
claim different jobs side by side; on SQLite the transaction starts with `BEGIN IMMEDIATE`, so claims are
serialised by the single writer."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.job.tables import Job, JobStatus


def claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(Job.status == JobStatus.QUEUED.value, Job.run_after <= now),
        sa.and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now),
    )


def claim(session: Session, worker_id: str, lease_seconds: float, now: datetime) -> Job | None:
    job = session.scalar(
        sa.select(Job).where(claimable(now)).order_by(Job.run_after).limit(1).with_for_update(skip_locked=True)
    )
    if job is None:
        return None
    job.status = JobStatus.RUNNING.value
    job.attempts += 1
    job.locked_by = worker_id
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.started_at = now
    session.flush()
    return job


def _owned(job_id: str, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING.value)


def extend_lease(session: Session, job_id: str, worker_id: str, until: datetime) -> bool:
    """Renew the lease; False when the job is no longer ours (it was taken over after our lease lapsed)."""
    result = session.execute(sa.update(Job).where(_owned(job_id, worker_id)).values(lease_expires_at=until))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, job_id: str, worker_id: str, **values: object) -> bool:
    result = session.execute(sa.update(Job).where(_owned(job_id, worker_id)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(Job.status, sa.func.count()).group_by(Job.status))
    counts = {status.value: 0 for status in JobStatus}
    counts.update({status: n for status, n in rows})
    return counts
