"""SQLite's WAL checkpoints run in a thread of the server (modelyard.db.checkpoints), not in the commit that happens to
take the WAL past SQLite's threshold: the writers' own threshold is raised to a safety net, the thread checkpoints
soon after each commit and not while nothing changes, and the app's lifespan starts and stops it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.db.checkpoints import WRITER_CHECKPOINT_PAGES, WalCheckpointer
from modelyard.db.engine import Database
from modelyard.db.urls import sqlite_file
from modelyard.workspace.tables import Workspace


@pytest.fixture
def database_file(db: Database) -> str:
    path = sqlite_file(db.url) if db.is_sqlite else None
    if path is None:
        pytest.skip("checkpoints are SQLite's WAL")
    return path


def _commit(db: Database, name: str) -> None:
    with db.session(write=True) as session:
        session.add(Workspace(name=name))
        session.commit()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_writers_leave_checkpoints_to_the_thread(db: Database, database_file: str) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WRITER_CHECKPOINT_PAGES
    checkpointer = WalCheckpointer(database_file, every=0.01)
    checkpointer.start()
    try:
        _until(lambda: checkpointer.rounds > 0, "the first round (what earlier tests left in the WAL)")
        rounds = checkpointer.rounds
        _commit(db, "first")

        def copied_all() -> bool:
            last = checkpointer.last
            return checkpointer.rounds > rounds and last is not None and last[0] == 0 and 0 < last[1] == last[2]

        _until(copied_all, "the commit's pages were copied into the database file")
        rounds = checkpointer.rounds
        time.sleep(0.2)  # twenty rounds with no commit: no checkpoint
        assert checkpointer.rounds == rounds
        _commit(db, "second")
        _until(lambda: checkpointer.rounds > rounds, "the next commit was checkpointed")
    finally:
        checkpointer.stop()
    with db.session(write=False) as session:
        assert session.scalars(sa.select(Workspace.name).order_by(Workspace.name)).all() == ["first", "second"]


def test_a_failing_checkpoint_is_logged_and_tried_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    checkpointer = WalCheckpointer(str(tmp_path), every=0.01)  # a directory: SQLite cannot open it
    with caplog.at_level(logging.WARNING, logger="modelyard.db"):
        checkpointer.start()
        _until(lambda: len(caplog.records) >= 2, "two rounds had failed")
        checkpointer.stop()
    assert "WAL checkpoint of" in caplog.records[0].getMessage()
    assert checkpointer.rounds == 0


def test_the_app_runs_one_checkpointer_while_it_serves(app: FastAPI, database_file: str) -> None:
    def running() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "modelyard-wal-checkpoint"]

    before = len(running())
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert len(running()) == before + 1
    assert len(running()) == before
