"""The `modelyard` command: server commands, and resource commands that go through the SDK."""

from __future__ import annotations

import typer

from modelyard.cli import server

app = typer.Typer(
    name="modelyard",
    help="modelyard: a registry for large language models, their versions, adapters and files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(server.serve)
app.command()(server.worker)
app.add_typer(server.db_app, name="db")


def main() -> None:
    app()
