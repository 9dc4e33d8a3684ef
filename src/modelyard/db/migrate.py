"""Alembic, driven from code: the migrations ship inside the package (`modelyard db upgrade`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def for_this_dialect(dialect: str) -> Callable[..., bool]:
    """An Alembic `include_object` hook: leave out of autogenerate's comparison the indexes declared for another
    database only (`Index(...).ddl_if(dialect="postgresql")`), which that database never has."""

    def include(obj: object, _name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
        if type_ != "index":
            return True
        ddl_if = getattr(obj, "_ddl_if", None)
        wanted = getattr(ddl_if, "dialect", None)
        return wanted is None or wanted == dialect

    return include
