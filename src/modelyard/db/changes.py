"""A token that changes whenever a transaction commits a change to the database, whichever process or machine it
runs in: what an answer cache compares to know that what it holds is still what the database says.

- SQLite: `PRAGMA data_version` on a connection of its own that never writes. SQLite changes it whenever another
  connection (of this process or another) commits, and only then; a checkpoint changes it too, which only costs a
  cache miss.
- PostgreSQL (13 or newer): the current snapshot, `pg_current_snapshot()`: its xmax grows whenever a transaction takes a
  transaction id (it writes), and its list of running ids changes when such a transaction ends. Reads take none.
  Other databases of the same cluster change it too (a cache miss, never a stale answer).
- In-memory SQLite: no token (only this process can see it, and it is for tests).

Equal tokens mean that nothing was committed in between. Read the token before the data it guards, and in a
transaction that has not read anything yet, so that the answer is at least as new as its token.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.db.connections import kept_connection
from modelyard.db.reads import AsyncReader, Read
from modelyard.db.urls import sqlite_file

_SNAPSHOT = sa.text("SELECT pg_current_snapshot()::text")
_SNAPSHOT_READ = Read(sa.select(sa.cast(sa.func.pg_current_snapshot(), sa.Text).label("token")))


class ChangeWatch:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._sqlite: Any = None
        self.enabled = engine.dialect.name == "postgresql" or sqlite_file(engine.url) is not None

    def token(self, session: Session) -> str | None:
        """The token now; None when there is none (in-memory SQLite), or when `session` has already read (its
        snapshot may then be older than the token)."""
        if not self.enabled or session.in_transaction():
            return None
        if self._engine.dialect.name == "postgresql":
            return str(session.execute(_SNAPSHOT).scalar_one())
        with self._lock:
            try:
                if self._sqlite is None:
                    # Out of the pool, so that no request ever writes through it (its own commits would not count).
                    self._sqlite = kept_connection(self._engine)
                return str(self._sqlite.execute("PRAGMA data_version").fetchone()[0])
            except (sa.exc.DBAPIError, sqlite3.Error):
                # No token, no cached answer: the request reads the database as it would without the cache, and
                # the next one opens a new connection.
                self._close()
                return None

    async def token_async(self, reader: AsyncReader) -> str:
        """The token on PostgreSQL, read on the event loop (in autocommit: read it before the data it guards)."""
        row = await reader.first(_SNAPSHOT_READ)
        assert row is not None
        return str(row["token"])

    def _close(self) -> None:
        if self._sqlite is not None:
            with contextlib.suppress(sqlite3.Error):
                self._sqlite.close()
            self._sqlite = None

    def close(self) -> None:
        with self._lock:
            self._close()
