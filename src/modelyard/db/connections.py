"""Driver connections kept outside the pool, for one purpose each: made as the pool's are (with every pragma that
`create_engine` sets on connect), then detached, so that no request ever gets them from the pool and the pool never
resets or recycles them. Their owner closes them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine


def kept_connection(engine: Engine) -> Any:
    """A new driver connection of `engine`, out of its pool for good."""
    proxied = engine.raw_connection()
    connection = proxied.dbapi_connection
    proxied.detach()
    return connection
