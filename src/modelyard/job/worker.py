"""The worker: claims a job with a lease, keeps the lease alive while the handler runs (one heartbeat thread per
worker renews the leases of all its running jobs), then records success, a retry with exponential backoff, or the
final failure. A job whose worker died keeps its lease until it expires; then another worker claims it again (the
attempt counts)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from modelyard.config import Settings
from modelyard.db.base import utcnow
from modelyard.db.engine import Database
from modelyard.job import repository
from modelyard.job.registry import (
    TAKEN_OVER,
    JobContext,
    PermanentJobError,
    get_give_up_hook,
    get_handler,
    load_modules,
    maintenance_tasks,
)
from modelyard.job.tables import Job, JobStatus
from modelyard.kit import idempotency

log = logging.getLogger("modelyard.worker")
MAX_ERROR_CHARS = 8000
MAINTENANCE_SECONDS = 600.0


class _Leases:
    """The leases of the jobs a worker is running, renewed together every third of a lease by one thread, started
    at the first job. (A thread per job cost more than validating a model version: starting and joining it took a
    third of the worker's time, in hand-offs of the GIL; bench/RESULTS.md.)"""

    def __init__(self, db: Database, lease_seconds: float, stop: threading.Event) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.stop = stop
        self._held: dict[str, str] = {}  # job id -> the worker id that holds its lease
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, job_id: str, worker_id: str) -> Iterator[None]:
        with self._lock:
            self._held[job_id] = worker_id
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, daemon=True, name="lease-heartbeat")
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job_id, None)

    def _renew(self) -> None:
        # Jobs still running when the worker is asked to stop keep their leases until they end.
        while True:
            time.sleep(self.lease_seconds / 3)
            with self._lock:
                held = list(self._held.items())
                if not held and self.stop.is_set():
                    self._thread = None
                    return
            if not held:
                continue
            try:
                until = utcnow() + timedelta(seconds=self.lease_seconds)
                with self.db.session(write=True) as session:
                    lost = [job for job, owner in held if not repository.extend_lease(session, job, owner, until)]
                    session.commit()
            except Exception:
                log.exception("heartbeat: renewing the leases of %d jobs failed", len(held))
                continue
            for job_id in lost:
                log.warning("job %s: lease lost to another worker", job_id)
                with self._lock:
                    self._held.pop(job_id, None)


class Worker:
    def __init__(self, db: Database, settings: Settings, *, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._leases = _Leases(db, settings.job_lease_seconds, self.stop_event)
        load_modules(settings.job_modules)

    # -- one job ---------------------------------------------------------------------------------------------

    def _claim(self, worker_id: str) -> repository.Claimed | None:
        with self.db.session(write=True) as session:
            claimed = repository.claim(session, worker_id, self.settings.job_lease_seconds, utcnow())
            session.commit()
            return claimed

    def run_once(self, worker_id: str | None = None) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        worker_id = worker_id or self.name
        claimed = self._claim(worker_id)
        if claimed is None:
            return False
        job_id, kind, payload, attempt = claimed.id, claimed.kind, claimed.payload, claimed.attempts
        max_attempts = claimed.max_attempts or self.settings.job_max_attempts
        ctx = JobContext(job_id, kind, payload, attempt, self.db, self.settings, worker_id)
        if attempt > max_attempts:
            # The previous attempt's worker died holding the lease, and that was the last attempt.
            error = f"Gave up after {max_attempts} attempts: the last attempt's worker stopped before finishing"
            self._record(ctx, failed=True, error=error)
            return True
        handler = get_handler(kind)
        if handler is None:
            self._record(ctx, failed=True, error=f"No handler for job kind '{kind}'")
            return True
        log.info("job %s (%s) attempt %d started", job_id, kind, attempt)
        with self._leases.holding(job_id, worker_id):
            try:
                result = handler(ctx)
            except PermanentJobError as exc:
                self._record(ctx, failed=True, error=str(exc))
            except Exception as exc:
                error = "".join(traceback.format_exception_only(exc)).strip()
                log.warning("job %s (%s) attempt %d failed: %s", job_id, kind, attempt, error)
                self._record(ctx, failed=attempt >= max_attempts, error=error, retry=True)
            else:
                if not ctx.recorded:
                    self._record(ctx, failed=False, result=result)
        return True

    def _record(
        self,
        ctx: JobContext,
        *,
        failed: bool,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        retry: bool = False,
    ) -> None:
        job_id, worker_id, attempt = ctx.job_id, ctx.worker_id, ctx.attempt
        now = utcnow()
        values: dict[str, Any]
        if not failed and not retry:
            values = repository.succeeded(result, now)
        elif failed:
            values = {
                "status": JobStatus.FAILED.value,
                "last_error": (error or "")[:MAX_ERROR_CHARS],
                "finished_at": now,
            }
        else:
            delay = self.settings.job_backoff_seconds * (2 ** (attempt - 1))
            values = {
                "status": JobStatus.QUEUED.value,
                "last_error": (error or "")[:MAX_ERROR_CHARS],
                "run_after": now + timedelta(seconds=min(delay, 3600)),
            }
        values.update({"lease_expires_at": None, "updated_at": now})
        with self.db.session(write=True) as session:
            if failed or retry:
                values["locked_by"] = None
            ours = repository.finish(session, job_id, worker_id, **values)
            session.commit()
        if not ours:
            log.warning(TAKEN_OVER, job_id)
        elif failed:
            log.error("job %s failed for good after attempt %d: %s", job_id, attempt, error)
            hook = get_give_up_hook(ctx.kind)
            if hook is not None:
                try:
                    hook(ctx, error or "")
                except Exception:
                    log.exception("job %s: the give-up hook of %s failed", job_id, ctx.kind)

    # -- the loop --------------------------------------------------------------------------------------------

    def maintain(self) -> None:
        """Housekeeping that any one worker may do: forget expired idempotency keys, then the domains' tasks
        (such as removing unreferenced blobs). One failing task does not stop the others."""
        with self.db.session(write=True) as session:
            purged = idempotency.purge_expired(session, self.settings.idempotency_ttl_seconds)
            session.commit()
        if purged:
            log.info("purged %d expired idempotency keys", purged)
        for name, task in maintenance_tasks().items():
            try:
                task(self.db, self.settings)
            except Exception:
                log.exception("maintenance task %s failed", name)

    def _loop(self, worker_id: str, maintains: bool = False) -> None:
        next_maintenance = 0.0
        while not self.stop_event.is_set():
            if maintains and time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + MAINTENANCE_SECONDS
                try:
                    self.maintain()
                except Exception:
                    log.exception("worker %s: maintenance failed", worker_id)
            try:
                busy = self.run_once(worker_id)
            except Exception:
                log.exception("worker %s: error in the job loop", worker_id)
                busy = False
            if not busy:
                self.stop_event.wait(self.settings.job_poll_seconds)

    def start(self) -> None:
        """Run the loop in background threads (as `modelyard serve` does)."""
        for index in range(self.settings.worker_concurrency):
            worker_id = f"{self.name}:{index}"
            thread = threading.Thread(
                target=self._loop, args=(worker_id, index == 0), daemon=True, name=f"worker-{index}"
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)

    def run_forever(self) -> None:
        """Run the loop until stop() (as `modelyard worker` does)."""
        self.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.stop()


__all__ = ["Job", "Worker"]
