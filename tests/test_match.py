"""`starts_with` (modelyard.db.match): the same case-sensitive prefix match on both databases, with LIKE's special
characters taken literally, alone or combined with other conditions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelyard.db.engine import Database
from modelyard.db.match import starts_with
from modelyard.workspace.tables import Workspace

NAMES = ["ab", "abc", "abd", "ABc", "ab%x", "ab_x", "ab/x", "abc\U0010ffff", "b", "a\u00e9"]


@pytest.fixture
def named(db: Database) -> Database:
    with db.session(write=True) as session:
        for name in NAMES:
            session.add(Workspace(name=name, description="", created_by="t", updated_by="t"))
        session.commit()
    return db


def _match(db: Database, condition: sa.ColumnElement[bool]) -> list[str]:
    with db.session(write=False) as session:
        return sorted(session.scalars(sa.select(Workspace.name).where(condition)))


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("ab", ["ab", "ab%x", "ab/x", "ab_x", "abc", "abc\U0010ffff", "abd"]),
        ("abc", ["abc", "abc\U0010ffff"]),
        ("ab%", ["ab%x"]),
        ("ab_", ["ab_x"]),
        ("ab/", ["ab/x"]),
        ("AB", ["ABc"]),
        ("abc\U0010ffff", ["abc\U0010ffff"]),
        ("a\u00e9", ["a\u00e9"]),
        ("zz", []),
    ],
)
def test_prefixes_match_literally_and_case_sensitively(named: Database, prefix: str, expected: list[str]) -> None:
    assert _match(named, starts_with(Workspace.name, prefix)) == sorted(expected)


def test_combined_with_other_conditions(named: Database) -> None:
    assert _match(named, sa.and_(starts_with(Workspace.name, "ab"), Workspace.name != "abc")) == sorted(
        ["ab", "ab%x", "ab/x", "ab_x", "abc\U0010ffff", "abd"]
    )
    assert _match(named, sa.or_(starts_with(Workspace.name, "abc"), Workspace.name == "b")) == sorted(
        ["abc", "abc\U0010ffff", "b"]
    )
    assert _match(named, sa.not_(starts_with(Workspace.name, "ab"))) == sorted(["ABc", "b", "a\u00e9"])


def test_each_prefix_is_bound_anew_from_the_statement_cache(named: Database) -> None:
    """The statement is cached once; a second prefix must not reuse the first one's value."""
    assert _match(named, starts_with(Workspace.name, "abd")) == ["abd"]
    assert _match(named, starts_with(Workspace.name, "b")) == ["b"]
