"""What a database URL names."""

from __future__ import annotations

import os

import sqlalchemy as sa


def sqlite_file(url: str | sa.URL) -> str | None:
    """The absolute path of the SQLite database file that `url` names; None for another database, and for an
    in-memory SQLite database (which only the process that opened it can see). The files that server processes share
    beside the database (the writers' lock, the token cache's revision) are named after this path."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    return os.path.abspath(parsed.database)
