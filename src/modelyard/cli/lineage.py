"""`modelyard datasets|prompts|fine-tuning-jobs ...`: the lineage records an adapter links to (Cloudera's): the data
it was trained on, the prompt that formatted it, and the fine-tuning job that produced it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from modelyard.cli._common import (
    IdempotencyOption,
    JsonOption,
    LimitOption,
    PageSizeOption,
    SortOption,
    TokenOption,
    UrlOption,
    YesOption,
    connect,
    delete_confirmed,
    page_size_for,
    parse_timestamp,
    show,
    show_list,
    take,
)

datasets_app = typer.Typer(help="Datasets: the data adapters were trained on (lineage records).", no_args_is_help=True)
prompts_app = typer.Typer(
    help="Prompts: the templates that turned a dataset into training examples (lineage records).",
    no_args_is_help=True,
)
jobs_app = typer.Typer(
    help="Fine-tuning jobs: the training runs that produced adapters (lineage records).", no_args_is_help=True
)

WorkspaceArgument = Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)]
NameArgument = Annotated[str, typer.Argument(help="Its name (unique in the workspace)", show_default=False)]
RecordArgument = Annotated[str, typer.Argument(metavar="WS/NAME", help="As workspace/name", show_default=False)]
DescriptionOption = Annotated[str, typer.Option(help="Free text, at most 1000 characters")]
NewDescriptionOption = Annotated[str | None, typer.Option(help="The new description", show_default=False)]
NamePrefixOption = Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)]
DatasetOption = Annotated[
    str | None, typer.Option(metavar="DATASET", help="A dataset of the same workspace", show_default=False)
]
StatusOption = Annotated[
    str | None,
    typer.Option(
        metavar="STATUS", help="PENDING, RUNNING, COMPLETED, FAILED or CANCELED (any case)", show_default=False
    ),
]
HyperparameterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hyperparameter",
        metavar="KEY=VALUE",
        help="A hyperparameter (the value read as JSON when it is, e.g. 3 or 2e-4, else as text); repeat for more",
        show_default=False,
    ),
]

DATASET_COLUMNS = [
    ("name", "NAME"),
    ("source_ref", "SOURCE"),
    ("feature_list", "FEATURES"),
    ("description", "DESCRIPTION"),
    ("updated_at", "UPDATED"),
]
DATASET_FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("description", "description"),
    ("source_ref", "source"),
    ("feature_list", "features"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_at", "updated at"),
]
PROMPT_COLUMNS = [
    ("name", "NAME"),
    ("dataset", "DATASET"),
    ("prompt_template", "PROMPT TEMPLATE"),
    ("description", "DESCRIPTION"),
    ("updated_at", "UPDATED"),
]
PROMPT_FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("description", "description"),
    ("dataset", "dataset"),
    ("prompt_template", "prompt template"),
    ("input_template", "input template"),
    ("completion_template", "completion template"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_at", "updated at"),
]
JOB_COLUMNS = [
    ("name", "NAME"),
    ("status", "STATUS"),
    ("base_model", "BASE MODEL"),
    ("dataset", "DATASET"),
    ("prompt", "PROMPT"),
    ("adapter_name", "ADAPTER"),
    ("dataset_fraction", "FRACTION"),
    ("train_test_split", "SPLIT"),
    ("updated_at", "UPDATED"),
]
JOB_FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("description", "description"),
    ("status", "status"),
    ("base_model", "base model"),
    ("base_model_version", "base model version"),
    ("dataset", "dataset"),
    ("prompt", "prompt"),
    ("adapter_name", "adapter"),
    ("dataset_fraction", "dataset fraction"),
    ("train_test_split", "train/test split"),
    ("hyperparameters", "hyperparameters"),
    ("started_at", "started at"),
    ("finished_at", "finished at"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_at", "updated at"),
]


# --- arguments and rendering ----------------------------------------------------------------------------------------


def _split(ref: str, what: str) -> tuple[str, str]:
    from modelyard.client._adapters import resource_ref

    try:
        return resource_ref(ref, None, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'WS/NAME'") from None


def _source(value: str) -> dict[str, str]:
    """--source TYPE:REF, e.g. huggingface:acme/tickets or url:https://example.com/data.jsonl."""
    kind, sep, ref = value.partition(":")
    if not sep or kind not in ("fileset", "huggingface", "local", "url") or not ref:
        raise typer.BadParameter(
            f"{value!r} is not TYPE:REF with TYPE fileset, huggingface, local or url (e.g. huggingface:acme/tickets)",
            param_hint="'--source'",
        )
    return {"type": kind, "ref": ref}


def _hyperparameters(values: Sequence[str] | None) -> dict[str, Any] | None:
    if not values:
        return None
    found: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE (e.g. epochs=3)", param_hint="'--hyperparameter'")
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text
    return found


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


def _dataset_row(dataset: dict[str, Any]) -> dict[str, Any]:
    source = dataset.get("source") or {}
    return {
        **dataset,
        "source_ref": f"{source.get('type')}:{source.get('ref')}" if source else None,
        "feature_list": ", ".join(dataset.get("features") or []) or None,
    }


def _show_dataset(dataset: dict[str, Any], as_json: bool) -> None:
    show(dataset if as_json else _dataset_row(dataset), as_json, DATASET_FIELDS)


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "adapter_name": job.get("adapter_name") or None}


def _show_job(job: dict[str, Any], as_json: bool) -> None:
    show(job if as_json else _job_row(job), as_json, JOB_FIELDS)


# --- datasets -----------------------------------------------------------------------------------------------------


@datasets_app.command("create")
def create_dataset(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name: NameArgument,
    source: Annotated[
        str,
        typer.Option(
            metavar="TYPE:REF",
            help="Where the data is: fileset:WS/NAME, huggingface:ORG/NAME, local:PATH or url:URL",
            show_default=False,
        ),
    ],
    description: DescriptionOption = "",
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", metavar="NAME", help="A feature (column); repeat for more", show_default=False),
    ] = None,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a dataset (editors)."""
    parsed = _source(source)
    with connect(ctx, url, token) as client:
        created = client.datasets.create(
            workspace,
            name,
            source=parsed,
            description=description,
            features=feature,
            idempotency_key=idempotency_key,
        )
    _show_dataset(created, as_json)


@datasets_app.command("list")
def list_datasets(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name_prefix: NamePrefixOption = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the datasets of a workspace, newest first."""
    with connect(ctx, url, token) as client:
        pager = client.datasets.list(
            workspace, name_prefix=name_prefix, sort=sort, page_size=page_size_for(limit, page_size)
        )
        items = take(pager, limit)
    show_list(items if as_json else [_dataset_row(d) for d in items], as_json, DATASET_COLUMNS)


@datasets_app.command("show")
def show_dataset(
    ctx: typer.Context,
    dataset: RecordArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one dataset."""
    workspace, name = _split(dataset, "dataset")
    with connect(ctx, url, token) as client:
        found = client.datasets.get(workspace, name)
    _show_dataset(found, as_json)


@datasets_app.command("update")
def update_dataset(
    ctx: typer.Context,
    dataset: RecordArgument,
    description: NewDescriptionOption = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature", metavar="NAME", help="The new features, replacing all of them; repeat", show_default=False
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a dataset's description or features (editors)."""
    workspace, name = _split(dataset, "dataset")
    with connect(ctx, url, token) as client:
        updated = client.datasets.update(workspace, name, description=description, features=feature or None)
    _show_dataset(updated, as_json)


@datasets_app.command("delete")
def delete_dataset(
    ctx: typer.Context,
    dataset: RecordArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a dataset record (editors); prompts and jobs that named it no longer do."""
    workspace, name = _split(dataset, "dataset")
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"dataset '{workspace}/{name}'",
        call=lambda client: client.datasets.delete(workspace, name),
    )


# --- prompts ------------------------------------------------------------------------------------------------------


@prompts_app.command("create")
def create_prompt(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name: NameArgument,
    prompt_template: Annotated[
        str, typer.Option(metavar="TEXT", help="The whole training example, e.g. 'Q: {q}\\nA: {a}'", show_default=False)
    ],
    input_template: Annotated[
        str, typer.Option(metavar="TEXT", help="The part given to the model, e.g. 'Q: {q}\\nA:'", show_default=False)
    ],
    completion_template: Annotated[
        str, typer.Option(metavar="TEXT", help="The part the model learns to write, e.g. ' {a}'", show_default=False)
    ],
    dataset: DatasetOption = None,
    description: DescriptionOption = "",
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a prompt (editors)."""
    with connect(ctx, url, token) as client:
        created = client.prompts.create(
            workspace,
            name,
            prompt_template=prompt_template,
            input_template=input_template,
            completion_template=completion_template,
            dataset=dataset,
            description=description,
            idempotency_key=idempotency_key,
        )
    show(created, as_json, PROMPT_FIELDS)


@prompts_app.command("list")
def list_prompts(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name_prefix: NamePrefixOption = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the prompts of a workspace, newest first."""
    with connect(ctx, url, token) as client:
        pager = client.prompts.list(
            workspace, name_prefix=name_prefix, sort=sort, page_size=page_size_for(limit, page_size)
        )
        items = take(pager, limit)
    show_list(items, as_json, PROMPT_COLUMNS)


@prompts_app.command("show")
def show_prompt(
    ctx: typer.Context,
    prompt: RecordArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one prompt with its templates."""
    workspace, name = _split(prompt, "prompt")
    with connect(ctx, url, token) as client:
        found = client.prompts.get(workspace, name)
    show(found, as_json, PROMPT_FIELDS)


@prompts_app.command("update")
def update_prompt(
    ctx: typer.Context,
    prompt: RecordArgument,
    description: NewDescriptionOption = None,
    dataset: DatasetOption = None,
    prompt_template: Annotated[str | None, typer.Option(metavar="TEXT", help="The new prompt template")] = None,
    input_template: Annotated[str | None, typer.Option(metavar="TEXT", help="The new input template")] = None,
    completion_template: Annotated[str | None, typer.Option(metavar="TEXT", help="The new completion template")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a prompt's description, dataset or templates (editors)."""
    workspace, name = _split(prompt, "prompt")
    with connect(ctx, url, token) as client:
        updated = client.prompts.update(
            workspace,
            name,
            description=description,
            dataset=dataset,
            prompt_template=prompt_template,
            input_template=input_template,
            completion_template=completion_template,
        )
    show(updated, as_json, PROMPT_FIELDS)


@prompts_app.command("delete")
def delete_prompt(
    ctx: typer.Context,
    prompt: RecordArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a prompt record (editors); adapters and jobs that named it no longer do."""
    workspace, name = _split(prompt, "prompt")
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"prompt '{workspace}/{name}'",
        call=lambda client: client.prompts.delete(workspace, name),
    )


# --- fine-tuning jobs ---------------------------------------------------------------------------------------------


@jobs_app.command("create")
def create_job(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name: NameArgument,
    base_model: Annotated[
        str, typer.Option(metavar="MODEL", help="The model it fine-tunes, NAME or WS/NAME", show_default=False)
    ],
    base_model_version: Annotated[
        str | None, typer.Option(metavar="VERSION", help="The version of the base model", show_default=False)
    ] = None,
    dataset: DatasetOption = None,
    prompt: Annotated[
        str | None, typer.Option(metavar="PROMPT", help="A prompt of the same workspace", show_default=False)
    ] = None,
    adapter_name: Annotated[
        str | None, typer.Option(metavar="NAME", help="The adapter it produces", show_default=False)
    ] = None,
    dataset_fraction: Annotated[
        float | None,
        typer.Option(
            metavar="FRACTION", help="The share of the dataset used, in (0, 1] (default 1.0)", show_default=False
        ),
    ] = None,
    train_test_split: Annotated[
        float | None,
        typer.Option(
            metavar="FRACTION", help="The share used for training, in (0, 1] (default 0.9)", show_default=False
        ),
    ] = None,
    hyperparameter: HyperparameterOption = None,
    status: StatusOption = None,
    description: DescriptionOption = "",
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a fine-tuning job (editors). Its status defaults to PENDING."""
    hyperparameters = _hyperparameters(hyperparameter)
    with connect(ctx, url, token) as client:
        created = client.fine_tuning_jobs.create(
            workspace,
            name,
            base_model=base_model,
            base_model_version=base_model_version,
            dataset=dataset,
            prompt=prompt,
            adapter_name=adapter_name,
            dataset_fraction=dataset_fraction,
            train_test_split=train_test_split,
            hyperparameters=hyperparameters,
            status=_upper(status),
            description=description,
            idempotency_key=idempotency_key,
        )
    _show_job(created, as_json)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    status: StatusOption = None,
    name_prefix: NamePrefixOption = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the fine-tuning jobs of a workspace, newest first."""
    with connect(ctx, url, token) as client:
        pager = client.fine_tuning_jobs.list(
            workspace,
            status=_upper(status),
            name_prefix=name_prefix,
            sort=sort,
            page_size=page_size_for(limit, page_size),
        )
        items = take(pager, limit)
    show_list(items if as_json else [_job_row(j) for j in items], as_json, JOB_COLUMNS)


@jobs_app.command("show")
def show_job(
    ctx: typer.Context,
    job: RecordArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one fine-tuning job."""
    workspace, name = _split(job, "fine-tuning job")
    with connect(ctx, url, token) as client:
        found = client.fine_tuning_jobs.get(workspace, name)
    _show_job(found, as_json)


@jobs_app.command("update")
def update_job(
    ctx: typer.Context,
    job: RecordArgument,
    status: StatusOption = None,
    description: NewDescriptionOption = None,
    hyperparameter: Annotated[
        list[str] | None,
        typer.Option(
            "--hyperparameter",
            metavar="KEY=VALUE",
            help="The new hyperparameters, replacing all of them (values as JSON when they are); repeat",
            show_default=False,
        ),
    ] = None,
    started_at: Annotated[
        str | None, typer.Option(metavar="TIME", help="When it started, ISO 8601 (UTC if no zone)", show_default=False)
    ] = None,
    finished_at: Annotated[
        str | None, typer.Option(metavar="TIME", help="When it ended, ISO 8601 (UTC if no zone)", show_default=False)
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a fine-tuning job's status, description, hyperparameters or times (editors)."""
    workspace, name = _split(job, "fine-tuning job")
    hyperparameters = _hyperparameters(hyperparameter)
    started = parse_timestamp(started_at, "--started-at")
    finished = parse_timestamp(finished_at, "--finished-at")
    with connect(ctx, url, token) as client:
        updated = client.fine_tuning_jobs.update(
            workspace,
            name,
            status=_upper(status),
            description=description,
            hyperparameters=hyperparameters,
            started_at=started,
            finished_at=finished,
        )
    _show_job(updated, as_json)


@jobs_app.command("delete")
def delete_job(
    ctx: typer.Context,
    job: RecordArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a fine-tuning job record (editors); adapters that named it no longer do, and their dataset split
    falls back to the defaults."""
    workspace, name = _split(job, "fine-tuning job")
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"fine-tuning job '{workspace}/{name}'",
        call=lambda client: client.fine_tuning_jobs.delete(workspace, name),
    )
