"""The `modelyard` command: server commands, and resource commands that go through the SDK."""

from __future__ import annotations

import typer

from modelyard.cli import (
    adapters,
    events,
    filesets,
    lineage,
    members,
    models,
    server,
    templates,
    tokens,
    users,
    workspaces,
)
from modelyard.cli._common import Connection, TokenOption, UrlOption

app = typer.Typer(
    name="modelyard",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(ctx: typer.Context, url: UrlOption = None, token: TokenOption = None) -> None:
    """modelyard: a registry for large language models, their versions, adapters and files.

    Resource commands go through the Python SDK; --url and --token here apply to all of them.
    """
    ctx.obj = Connection(url=url, token=token)


app.command()(server.serve)
app.command()(server.worker)
app.add_typer(server.db_app, name="db")
app.add_typer(workspaces.app, name="workspaces")
app.add_typer(members.app, name="members")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(events.app, name="events")
app.add_typer(filesets.app, name="filesets")
app.add_typer(models.app, name="models")
app.add_typer(templates.app, name="templates")
app.add_typer(adapters.app, name="adapters")
app.add_typer(lineage.datasets_app, name="datasets")
app.add_typer(lineage.prompts_app, name="prompts")
app.add_typer(lineage.jobs_app, name="fine-tuning-jobs")
app.command("base-model-types")(models.base_model_types)
app.command("me")(users.show_me)


def main() -> None:
    app()
