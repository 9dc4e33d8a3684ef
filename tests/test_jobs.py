"""The job runner: claims with leases, heartbeats, retries with backoff, giving up, and a worker process that is
killed in the middle of a job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import tests.jobkinds  # noqa: F401  (registers the test job kinds)
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job import service
from modelyard.job.tables import Job
from modelyard.job.worker import Worker

ROOT = Path(__file__).resolve().parent.parent


def _enqueue(db: Database, kind: str, payload: dict[str, object] | None = None, **kw: object) -> str:
    with db.session(write=True) as session:
        job_id = service.enqueue(session, kind, payload, **kw)  # type: ignore[arg-type]
        session.commit()
        return job_id


def _job(db: Database, job_id: str) -> Job:
    with db.session(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test-worker")


def test_job_succeeds_with_result(db: Database, worker: Worker) -> None:
    job_id = _enqueue(db, "test.echo", {"x": 1})
    assert worker.run_once() is True
    job = _job(db, job_id)
    assert job.status == "SUCCEEDED"
    assert job.result == {"echo": {"x": 1}, "attempt": 1}
    assert job.attempts == 1
    assert job.finished_at is not None
    assert job.locked_by == "test-worker"
    assert worker.run_once() is False


def test_always_failing_job_ends_failed_with_error(db: Database, worker: Worker) -> None:
    job_id = _enqueue(db, "test.always_fails", max_attempts=3)
    for attempt in range(1, 4):
        assert worker.run_once() is True
        job = _job(db, job_id)
        assert job.attempts == attempt
        assert "broken on purpose" in (job.last_error or "")
    assert job.status == "FAILED"
    assert "ValueError: broken on purpose (attempt 3)" in (job.last_error or "")
    assert worker.run_once() is False


def test_flaky_job_succeeds_on_retry(db: Database, worker: Worker) -> None:
    job_id = _enqueue(db, "test.flaky", {"succeed_on": 2})
    worker.run_once()
    assert _job(db, job_id).status == "QUEUED"
    worker.run_once()
    job = _job(db, job_id)
    assert job.status == "SUCCEEDED"
    assert job.result == {"succeeded_on": 2}
    assert job.last_error is None


def test_retry_waits_for_backoff(db: Database, settings: Settings) -> None:
    slow = Worker(db, settings.model_copy(update={"job_backoff_seconds": 60.0}), name="slow")
    job_id = _enqueue(db, "test.flaky", {"succeed_on": 2})
    slow.run_once()
    job = _job(db, job_id)
    assert job.status == "QUEUED"
    assert 55 < (job.run_after - job.updated_at).total_seconds() <= 60
    assert slow.run_once() is False  # not due yet


def test_permanent_error_and_unknown_kind_fail_at_once(db: Database, worker: Worker) -> None:
    permanent = _enqueue(db, "test.permanent")
    unknown = _enqueue(db, "test.no-such-kind")
    worker.run_once()
    worker.run_once()
    assert _job(db, permanent).status == "FAILED"
    assert _job(db, permanent).last_error == "the input can never work"
    assert _job(db, unknown).status == "FAILED"
    assert "No handler for job kind 'test.no-such-kind'" in (_job(db, unknown).last_error or "")


@pytest.mark.parametrize("stopping", [False, True], ids=["running", "asked-to-stop"])
def test_heartbeat_keeps_a_long_job_leased(db: Database, settings: Settings, stopping: bool) -> None:
    """While the job runs, and still once its worker is asked to stop: the job goes on, and keeps its lease."""
    short = settings.model_copy(update={"job_lease_seconds": 0.6})
    first = Worker(db, short, name="first")
    second = Worker(db, short, name="second")
    job_id = _enqueue(db, "test.sleep", {"seconds": 2.0})
    first.start()
    try:
        _wait(lambda: _job(db, job_id).status == "RUNNING")
        if stopping:
            first.stop_event.set()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # well past the 0.6 s lease
            assert second.run_once() is False
            time.sleep(0.1)
        _wait(lambda: _job(db, job_id).status == "SUCCEEDED")
    finally:
        first.stop()
    assert _job(db, job_id).attempts == 1


def _orphan(db: Database, job_id: str) -> None:
    """Make the job one that a worker claimed and died on: RUNNING, its lease expired, on its first attempt."""
    from modelyard.db.base import utcnow

    with db.session(write=True) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.attempts, job.locked_by, job.lease_expires_at = "RUNNING", 1, "ghost", utcnow()
        session.commit()


def test_claims_take_a_dead_workers_job_first_then_the_queue_in_order(db: Database, worker: Worker) -> None:
    queued = [_enqueue(db, "test.echo", {"n": i}) for i in range(3)]
    orphan = _enqueue(db, "test.echo", {"n": "orphan"})
    _orphan(db, orphan)
    finished = []
    while worker.run_once():
        finished.append(next(j for j in [orphan, *queued] if _job(db, j).status == "SUCCEEDED" and j not in finished))
    assert finished == [orphan, *queued]
    assert _job(db, orphan).attempts == 2
    assert _job(db, orphan).locked_by == "test-worker"


def test_a_handler_records_its_success_with_its_changes(db: Database, worker: Worker) -> None:
    from modelyard.workspace.tables import Workspace

    def workspace(name: str) -> Workspace | None:
        with db.session(write=False) as session:
            return session.scalar(sa.select(Workspace).where(Workspace.name == name))

    done = _enqueue(db, "test.succeed_with_change", {"name": "made-by-job"})
    assert worker.run_once()
    job = _job(db, done)
    assert (job.status, job.result, job.attempts, job.lease_expires_at) == (
        "SUCCEEDED",
        {"made": "made-by-job"},
        1,
        None,
    )
    assert workspace("made-by-job") is not None
    # A transaction that fails after the record undoes both: the attempt failed, and nothing was made.
    failed = _enqueue(db, "test.succeed_with_change", {"name": "never-made", "fail_after": True}, max_attempts=1)
    assert worker.run_once()
    job = _job(db, failed)
    assert (job.status, job.attempts, job.result) == ("FAILED", 1, None)
    assert "fails after the success" in (job.last_error or "")
    assert workspace("never-made") is None
    # Taken over by another worker meanwhile: the change commits, the job's row is left to its new worker.
    stolen = _enqueue(db, "test.succeed_with_change", {"name": "made-anyway", "steal": True})
    assert worker.run_once()
    job = _job(db, stolen)
    assert (job.status, job.locked_by, job.result) == ("RUNNING", "thief", None)
    assert workspace("made-anyway") is not None


def test_concurrent_workers_claim_each_job_once(db: Database, settings: Settings) -> None:
    ids = [_enqueue(db, "test.echo", {"n": i}) for i in range(30)]
    pool = Worker(db, settings.model_copy(update={"worker_concurrency": 4}), name="pool")
    pool.start()
    try:
        _wait(lambda: all(_job(db, i).status == "SUCCEEDED" for i in ids))
    finally:
        pool.stop()
    assert all(_job(db, i).attempts == 1 for i in ids)


@pytest.mark.slow
def test_killed_worker_job_runs_again_after_lease(db: Database, settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    job_id = _enqueue(db, "test.block_first", {"dir": str(marks)})
    env = {
        **os.environ,
        "MODELYARD_HOME": str(tmp_path / "home"),
        "MODELYARD_DATABASE_URL": db.url,
        "MODELYARD_JOB_MODULES": "tests.jobkinds",
        "MODELYARD_JOB_LEASE_SECONDS": "1.5",
        "MODELYARD_JOB_POLL_SECONDS": "0.1",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            _wait(lambda: (marks / "started").exists(), timeout=30)
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.communicate()[1].decode()[-3000:]) from None
        assert _job(db, job_id).status == "RUNNING"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (marks / "completed").exists()

    # A new worker cannot take the job while the dead worker's lease lasts, then takes it over.
    rescuer = Worker(db, settings.model_copy(update={"job_lease_seconds": 1.5}), name="rescuer")
    assert rescuer.run_once() is False
    _wait(lambda: rescuer.run_once(), timeout=10)
    job = _job(db, job_id)
    assert job.status == "SUCCEEDED"
    assert job.attempts == 2
    assert job.result == {"completed_on": 2}
    assert (marks / "completed").read_text().splitlines() == ["2"]
    assert (marks / "started").read_text().splitlines() == ["1", "2"]


def test_dead_worker_on_last_attempt_gives_up(db: Database, settings: Settings) -> None:
    job_id = _enqueue(db, "test.echo", max_attempts=1)
    _orphan(db, job_id)  # its worker died on its last attempt
    Worker(db, settings, name="w").run_once()
    job = _job(db, job_id)
    assert job.status == "FAILED"
    assert "Gave up after 1 attempts" in (job.last_error or "")


def test_metrics_count_jobs_by_state(db: Database, worker: Worker, anon: TestClient) -> None:
    _enqueue(db, "test.echo")
    _enqueue(db, "test.permanent")
    _enqueue(db, "test.echo", run_after=None)
    worker.run_once()
    worker.run_once()
    text = anon.get("/metrics").text
    assert 'modelyard_jobs{state="SUCCEEDED"} 1.0' in text
    assert 'modelyard_jobs{state="FAILED"} 1.0' in text
    assert 'modelyard_jobs{state="QUEUED"} 1.0' in text
