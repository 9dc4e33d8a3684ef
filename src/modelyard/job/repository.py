"""SQL of the job queue. A claim is one write transaction: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers
claim different jobs side by side; on SQLite the transaction starts with `BEGIN IMMEDIATE`, so claims are
serialised by the single writer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.job.tables import Job, JobStatus

_J = cast(sa.Table, Job.__table__)
_RUNNING = JobStatus.RUNNING.value


def _next(status: str, column: sa.Column[Any], due: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
    # The first row of index (status, column) that is `due`: a walk of the index that stops at its first row,
    # however long the queue (one search with both cases ORed sorted every due job at each claim). On PostgreSQL
    # the row is locked, and rows that other claims have locked are skipped.
    return (
        sa.select(_J.c.id)
        .where(_J.c.status == status, due)
        .order_by(column)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


# The claim, built once: a RUNNING job whose lease expired (its worker died) first, else the QUEUED job due first,
# made RUNNING for `worker` in the same statement. Both databases evaluate COALESCE's arguments only as far as
# needed, so the second search runs only when the first finds nothing. On SQLite the write transaction (BEGIN
# IMMEDIATE) serialises claims.
_CLAIM = (
    sa.update(_J)
    .where(
        _J.c.id
        == sa.func.coalesce(
            _next(_RUNNING, _J.c.lease_expires_at, _J.c.lease_expires_at < sa.bindparam("now")),
            _next(JobStatus.QUEUED.value, _J.c.run_after, _J.c.run_after <= sa.bindparam("now")),
        )
    )
    .values(
        status=_RUNNING,
        attempts=_J.c.attempts + 1,
        locked_by=sa.bindparam("worker"),
        lease_expires_at=sa.bindparam("until"),
        started_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
    .returning(_J.c.id, _J.c.kind, _J.c.payload, _J.c.attempts, _J.c.max_attempts)
)


class Claimed(NamedTuple):
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int | None


def claim(session: Session, worker_id: str, lease_seconds: float, now: datetime) -> Claimed | None:
    """The job this worker now runs, with its lease until `now` + `lease_seconds`; None when none is due."""
    until = now + timedelta(seconds=lease_seconds)
    row = session.connection().execute(_CLAIM, {"now": now, "worker": worker_id, "until": until}).first()
    return Claimed(*row) if row else None


def _owned(job_id: str, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(_J.c.id == job_id, _J.c.locked_by == worker_id, _J.c.status == _RUNNING)


def extend_lease(session: Session, job_id: str, worker_id: str, until: datetime) -> bool:
    """Renew the lease; False when the job is no longer ours (it was taken over after our lease lapsed)."""
    result = session.connection().execute(sa.update(_J).where(_owned(job_id, worker_id)).values(lease_expires_at=until))
    return bool(result.rowcount)


def succeeded(result: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The values of a job that ended well, for `finish`."""
    return {
        "status": JobStatus.SUCCEEDED.value,
        "result": result,
        "finished_at": now,
        "last_error": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


def finish(session: Session, job_id: str, worker_id: str, **values: object) -> bool:
    """Record the end of an attempt of a job this worker still holds; False when it is no longer ours."""
    result = session.connection().execute(sa.update(_J).where(_owned(job_id, worker_id)).values(**values))
    return bool(result.rowcount)


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(Job.status, sa.func.count()).group_by(Job.status))
    counts = {status.value: 0 for status in JobStatus}
    counts.update({status: n for status, n in rows})
    return counts
