"""`starts_with(column, prefix)`: the prefix filter of every list (`?name_prefix=`, a fileset's `?path=`), written so
an index answers it on both databases, with the same case-sensitive meaning on both.

- SQLite runs it as the range `prefix <= column < next(prefix)`, which its (binary-collated) indexes answer; its LIKE
  is case-insensitive and cannot use an ordinary index, so at 100,000 rows a LIKE scanned them all.
- PostgreSQL runs `column LIKE 'prefix%'` (escaped), which a `varchar_pattern_ops` index answers (migration 0006);
  a range would be wrong there under a linguistic collation, where strings with the prefix need not sort together."""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class StartsWith(ColumnElement[bool]):
    """Both forms are built here, with their bound parameters, so SQLAlchemy's statement cache sees (and re-binds)
    the prefix; each dialect renders the one it can answer from an index."""

    inherit_cache = True
    type = sa.Boolean()
    # A condition in its own right: without this, SQLite (no native booleans) would be sent `<condition> = 1`.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("like_form", InternalTraversal.dp_clauseelement),
        ("range_form", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[str], prefix: str) -> None:
        self.like_form = column.startswith(prefix, autoescape=True)
        upper = _next(prefix) if prefix else None
        if not prefix:
            self.range_form: ColumnElement[bool] = sa.true()
        elif upper is None:  # the prefix ends in the last code point: nothing sorts after it to bound the range
            self.range_form = sa.and_(column >= prefix, sa.func.substr(column, 1, len(prefix)) == prefix)
        else:
            self.range_form = sa.and_(column >= prefix, column < upper)


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    return StartsWith(column, prefix)


def _next(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix` (code point order)."""
    last = ord(prefix[-1])
    return None if last >= sys.maxunicode else prefix[:-1] + chr(last + 1)


@compiles(StartsWith)
def _like(element: StartsWith, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.like_form.self_group(), **kw))


@compiles(StartsWith, "sqlite")
def _range(element: StartsWith, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.range_form.self_group(), **kw))


def prefix_index(name: str, *leading: str, column: str = "name") -> sa.Index:
    """The PostgreSQL index that answers `starts_with(column, ...)` (LIKE 'prefix%') after equality on `leading`
    columns; SQLite has no use for it (it answers prefixes from its ordinary indexes), so it is not created there."""
    return sa.Index(name, *leading, column, postgresql_ops={column: "varchar_pattern_ops"}).ddl_if(dialect="postgresql")
