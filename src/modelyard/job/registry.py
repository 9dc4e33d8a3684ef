"""Job kinds. A domain registers a handler per kind with `@job_kind("fileset.scan")`; handlers run at least once
(a job whose worker died runs again), so they must be safe to repeat."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from modelyard.config import Settings
from modelyard.db.base import utcnow
from modelyard.db.engine import Database
from modelyard.job import repository

log = logging.getLogger("modelyard.worker")
# Logged when a job's end is recorded after another worker took the job over (this worker's lease had lapsed).
TAKEN_OVER = "job %s: finished after its lease was taken over; result discarded"


@dataclass
class JobContext:
    job_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    db: Database
    settings: Settings
    worker_id: str
    # Set by `succeed`: the job's success is recorded (or found taken over), and the worker records nothing more.
    recorded: bool = False

    def succeed(self, session: Session, result: dict[str, Any]) -> None:
        """Record the job's success in the handler's last transaction, `session`, with the changes it made: one
        transaction fewer per job than the worker's own record after the handler returns. The handler returns
        `result` too. If the job was taken over meanwhile (this worker's lease lapsed), the handler's changes
        still commit, as they would have before the record, and the job's row is left to its new worker."""
        if not repository.finish(session, self.job_id, self.worker_id, **repository.succeeded(result, utcnow())):
            log.warning(TAKEN_OVER, self.job_id)
        self.recorded = True

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short write transaction, committed on success. Keep long work (reading files, network) outside."""
        session = self.db.session(write=True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


Handler = Callable[[JobContext], dict[str, Any] | None]
# Called once when a job of the kind ends FAILED for good (its error as argument), to settle what the job was for:
# e.g. a version being validated becomes FAILED instead of staying CREATING.
GiveUpHook = Callable[[JobContext, str], None]
MaintenanceTask = Callable[[Database, Settings], None]
_HANDLERS: dict[str, Handler] = {}
_GIVE_UP: dict[str, GiveUpHook] = {}
_MAINTENANCE: dict[str, MaintenanceTask] = {}

# The domains' modules that register job kinds and maintenance tasks; every worker imports them.
BUILTIN_MODULES = ["modelyard.fileset.tasks", "modelyard.model.tasks", "modelyard.adapter.tasks"]


class PermanentJobError(Exception):
    """Raised by a handler for a failure that retrying cannot fix: the job fails at once."""


def job_kind(name: str, *, on_give_up: GiveUpHook | None = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[name] = handler
        if on_give_up is not None:
            _GIVE_UP[name] = on_give_up
        return handler

    return register


def get_give_up_hook(kind: str) -> GiveUpHook | None:
    return _GIVE_UP.get(kind)


def maintenance_task(name: str) -> Callable[[MaintenanceTask], MaintenanceTask]:
    """Register periodic housekeeping (run by one thread of each worker every few minutes)."""

    def register(task: MaintenanceTask) -> MaintenanceTask:
        _MAINTENANCE[name] = task
        return task

    return register


def maintenance_tasks() -> dict[str, MaintenanceTask]:
    return dict(_MAINTENANCE)


def get_handler(kind: str) -> Handler | None:
    return _HANDLERS.get(kind)


def load_modules(names: list[str]) -> None:
    for name in [*BUILTIN_MODULES, *names]:
        importlib.import_module(name)
