"""Test configuration: which databases this run uses, and the fixtures of tests/fixtures/."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.fixtures")

from tests.fixtures.databases import in_ci, postgres_reachable  # noqa: E402

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.app", "tests.fixtures.storage", "tests.fixtures.hub"]

_PG = pytest.StashKey[tuple[bool, str]]()


def pytest_configure(config: pytest.Config) -> None:
    ok, reason = postgres_reachable()
    config.stash[_PG] = (ok, reason)
    if not ok and in_ci():
        raise pytest.UsageError(
            f"CI=true but PostgreSQL is not reachable ({reason}). The PostgreSQL run is required in CI: "
            "start PostgreSQL or set MODELYARD_TEST_POSTGRES_URL."
        )


def pytest_report_header(config: pytest.Config) -> str:
    ok, reason = config.stash[_PG]
    return "databases: SQLite and PostgreSQL" if ok else f"databases: SQLite only (PostgreSQL not reachable: {reason})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    ok, reason = config.stash[_PG]
    if not ok:
        terminalreporter.write_line(
            f"NOTE: ran on SQLite only; PostgreSQL was not reachable ({reason})", yellow=True, bold=True
        )
