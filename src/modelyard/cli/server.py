"""`modelyard serve`, `modelyard worker` and `modelyard db upgrade`: the commands that run the server side."""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.db.engine import Database

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def _prepare() -> tuple[Settings, Database]:
    from modelyard.config import get_settings
    from modelyard.db import migrate
    from modelyard.db.engine import Database
    from modelyard.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    return settings, db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to MODELYARD_DATABASE_URL."""
    from modelyard.db import migrate

    _settings, db = _prepare()
    err.print(f"Database at migration {migrate.current_revision(db.engine)} (head).")


# Both ways of serving. ws="none": the API has no WebSocket routes, and uvicorn would otherwise import a WebSocket
# library at every start (about 30 ms of it).
_UVICORN_OPTIONS: dict[str, Any] = {"ws": "none", "log_level": "warning", "access_log": False}
# The job worker's process starts this long after the server's: the API answers first, and the worker's own start
# (about a second and a half of CPU) does not take a core from the server's while it starts.
WORKER_START_DELAY_SECONDS = 1.0


def serve(
    host: str = typer.Option(None, help="Bind address (default: MODELYARD_HOST)"),
    port: int = typer.Option(None, help="Port (default: MODELYARD_PORT)"),
    workers: int = typer.Option(
        1,
        min=1,
        help="Uvicorn worker processes. On SQLite more than one serves more reads; writes still take turns",
    ),
) -> None:
    """Upgrade the database, create the first admin if needed, and serve the API and its docs."""
    # Start-up builds about 165,000 objects that live as long as the process (modules, routes, schemas, mappers).
    # Collecting them while they are made took 0.2-0.3 s of each start (400 collections, 2 of them full); they are
    # frozen instead, once built, and the collector runs from then on. What start-up left as garbage is frozen
    # with them: about 2 MiB, once.
    gc.disable()
    import uvicorn

    from modelyard.bootstrap import ensure_admin
    from modelyard.db.urls import sqlite_file
    from modelyard.job.process import WorkerProcess, stop_on_signals

    settings, db = _prepare()
    host = host or settings.host
    port = settings.port if port is None else port
    secret = ensure_admin(db, settings)
    if secret:
        err.print(f"[bold]Admin token[/bold] (printed once, also in {settings.admin_token_path}):")
        print(secret, flush=True)
    else:
        err.print(f"Admin token: stored in {settings.admin_token_path}")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    err.print(f"Web UI: http://{shown_host}:{port}/ui")
    err.print(f"API docs: http://{shown_host}:{port}/docs   API: http://{shown_host}:{port}/v1")
    # The job worker runs as a child process (modelyard.job.process), except on an in-memory SQLite database, which
    # only this process can see: there it is a thread of the app, as with a single process it used to be.
    jobs = None
    if settings.worker and (db.writers is None or sqlite_file(settings.database_url) is not None):
        jobs = WorkerProcess()
        stop_on_signals(jobs)
        os.environ["MODELYARD_WORKER"] = "false"  # for the app, and the processes of --workers N
    try:
        if workers > 1:
            db.dispose()
            _collect_from_now_on()
            if jobs is not None:
                jobs.start(delay=WORKER_START_DELAY_SECONDS)
            uvicorn.run(
                "modelyard.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **_UVICORN_OPTIONS,
            )
            return
        # Imported here: with several workers, each imports the app in its own process, and the parent never needs it.
        from modelyard.app import create_app

        app = create_app(settings, db=db, freeze_gc=True, start_worker=settings.worker and jobs is None)
        _collect_from_now_on()
        if jobs is not None:
            jobs.start(delay=WORKER_START_DELAY_SECONDS)
        uvicorn.run(app, host=host, port=port, **_UVICORN_OPTIONS)
    finally:
        if jobs is not None:
            jobs.stop()


def _collect_from_now_on() -> None:
    gc.freeze()
    gc.enable()


def worker() -> None:
    """Run background jobs until interrupted (any number of these may share one PostgreSQL database)."""
    from modelyard.job.process import watch_parent
    from modelyard.job.worker import Worker

    settings, db = _prepare()
    if settings.worker_nice and hasattr(os, "nice"):
        # Validations can wait; the API's callers cannot (docs/operations.md, "Background jobs").
        os.nice(settings.worker_nice)
    runner = Worker(db, settings)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    watch_parent(runner.stop_event.set)  # started by `modelyard serve`: stop with it, even if it was killed
    err.print(f"Worker {runner.name} started ({settings.worker_concurrency} threads).")
    runner.run_forever()
    err.print("Worker stopped.")
    sys.exit(0)
