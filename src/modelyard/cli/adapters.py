"""`modelyard adapters ...`: adapters on base models, uploaded from a local directory (`add`) or registered from
where their files already are (`register`), with the report of their check against the base model's files.

An adapter the server finds incompatible is refused: the command prints the failing checks on stderr and exits 1
(with `add`, the uploaded files stay in their fileset)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
    done,
    error_console,
    page_size_for,
    print_fields,
    print_json,
    print_rich,
    print_table,
    show_list,
    take,
)
from modelyard.cli.filesets import _local_errors, _progress, _summary_line

if TYPE_CHECKING:
    from modelyard.client import Resource, TransferEvent, ValidationError
    from modelyard.client._filesets import ProgressCallback

app = typer.Typer(
    help="Adapters: fine-tuned adapters (LoRA, DoRA, P-tuning, ...) on base models, checked against the base "
    "model's files.",
    no_args_is_help=True,
)

WorkspaceArgument = Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)]
AdapterArgument = Annotated[
    str, typer.Argument(metavar="WS/NAME", help="The adapter, as workspace/name", show_default=False)
]
ModelArgument = Annotated[
    str, typer.Argument(metavar="WS/MODEL", help="The base model, as workspace/name", show_default=False)
]
NameOption = Annotated[
    str, typer.Option("--name", help="The adapter's name (unique in its workspace)", show_default=False)
]
FinetuningTypeOption = Annotated[
    str | None,
    typer.Option(
        "--finetuning-type",
        metavar="TYPE",
        help="NeMo's finetuning type, e.g. lora, dora, p_tuning, prompt_tuning (any case)",
        show_default=False,
    ),
]
AdapterWorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", metavar="WS", help="Put the adapter in this workspace (default: the model's)"),
]
DescriptionOption = Annotated[str, typer.Option(help="Free text, at most 1000 characters")]
DisabledOption = Annotated[
    bool, typer.Option("--disabled", help="Register it disabled (serving engines do not load it)")
]
ModelVersionOption = Annotated[
    str | None,
    typer.Option(
        metavar="VERSION",
        help="The base model version it was trained on (default: the current one)",
        show_default=False,
    ),
]
JobOption = Annotated[
    str | None,
    typer.Option(metavar="JOB", help="The fine-tuning job that produced it (a name)", show_default=False),
]
PromptOption = Annotated[
    str | None, typer.Option(metavar="PROMPT", help="The prompt it was trained with (a name)", show_default=False)
]
AllowIncompatibleOption = Annotated[
    bool,
    typer.Option("--allow-incompatible", help="Store an adapter that fails its check, disabled, instead of refusing"),
]
LoraRankOption = Annotated[
    int | None,
    typer.Option(min=1, help="LoRA rank r (default: read from the files)", show_default=False),
]
LoraAlphaOption = Annotated[
    float | None, typer.Option(help="LoRA alpha (default: read from the files)", show_default=False)
]
LoraDropoutOption = Annotated[
    float | None, typer.Option(help="LoRA dropout (default: read from the files)", show_default=False)
]
LoraTargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--lora-target-module",
        metavar="MODULE",
        help="A module LoRA adapts, e.g. q_proj; repeat for more (default: read from the files)",
        show_default=False,
    ),
]

COLUMNS = [
    ("name", "NAME"),
    ("model", "MODEL"),
    ("model_version", "VERSION"),
    ("finetuning_type", "TYPE"),
    ("enabled", "ENABLED"),
    ("check", "COMPATIBILITY"),
    ("source_ref", "SOURCE"),
    ("updated_at", "UPDATED"),
]
FIELDS = [
    ("name", "name"),
    ("id", "id"),
    ("workspace", "workspace"),
    ("model", "model"),
    ("model_version", "model version"),
    ("description", "description"),
    ("finetuning_type", "finetuning type"),
    ("enabled", "enabled"),
    ("lora", "lora config"),
    ("source_ref", "source"),
    ("fine_tuning_job", "fine-tuning job"),
    ("prompt", "prompt"),
    ("digest", "digest"),
    ("check", "compatibility"),
    ("created_by", "created by"),
    ("created_at", "created at"),
    ("updated_at", "updated at"),
]
CHECK_COLUMNS = [("name", "CHECK"), ("ok", "OK"), ("message", "MESSAGE")]
SPLIT_FIELDS = [
    ("dataset_fraction", "dataset fraction"),
    ("train_test_split", "train/test split"),
    ("fine_tuning_job", "fine-tuning job"),
]
LINEAGE_KINDS = {
    "dataset": "dataset",
    "prompt": "prompt",
    "fine_tuning_job": "fine-tuning job",
    "adapter": "adapter",
    "model_version": "model version",
    "model": "model",
}


# --- arguments ----------------------------------------------------------------------------------------------------


def _split(ref: str, param_hint: str = "'WS/NAME'", what: str = "adapter") -> tuple[str, str]:
    from modelyard.client._adapters import resource_ref

    try:
        return resource_ref(ref, None, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from None


def _lora_config(
    rank: int | None, alpha: float | None, dropout: float | None, targets: Sequence[str] | None
) -> dict[str, Any] | None:
    if rank is None and alpha is None and dropout is None and not targets:
        return None
    if rank is None:
        raise typer.BadParameter("A LoRA config needs its --lora-rank", param_hint="'--lora-rank'")
    config: dict[str, Any] = {"rank": rank}
    for key, value in (("alpha", alpha), ("dropout", dropout), ("target_modules", list(targets or []) or None)):
        if value is not None:
            config[key] = value
    return config


# --- rendering ----------------------------------------------------------------------------------------------------


def _source(adapter: Mapping[str, Any]) -> str | None:
    if adapter.get("fileset"):
        return f"fileset {adapter['fileset']}"
    if adapter.get("location"):
        return f"location {adapter['location']}"
    if adapter.get("huggingface_name"):
        pinned = (adapter.get("source") or {}).get("pinned") or {}
        commit = f" (commit {str(pinned['commit'])[:12]})" if isinstance(pinned, Mapping) and "commit" in pinned else ""
        return f"huggingface {adapter['huggingface_name']}{commit}"
    registry = adapter.get("model_registry")
    if isinstance(registry, Mapping):
        tracking = f" at {registry['tracking_uri']}" if registry.get("tracking_uri") else ""
        return f"model registry {registry.get('uri')}{tracking}"
    return None


def _lora_text(config: Any) -> str | None:
    if not isinstance(config, Mapping):
        return None
    parts = [f"rank {config.get('rank')}"]
    for key in ("alpha", "dropout"):
        value = config.get(key)
        if value is not None:
            parts.append(f"{key} {int(value) if isinstance(value, float) and value.is_integer() else value}")
    if config.get("target_modules"):
        parts.append("modules " + ", ".join(str(m) for m in config["target_modules"]))
    return ", ".join(parts)


def _check_status(compatibility: Any) -> str | None:
    if not isinstance(compatibility, Mapping):
        return None
    status = str(compatibility.get("status"))
    base = compatibility.get("base_version")
    return f"{status} (against version {base})" if base else status


def _row(adapter: Mapping[str, Any]) -> dict[str, Any]:
    compatibility = adapter.get("compatibility")
    return {
        **adapter,
        "check": compatibility.get("status") if isinstance(compatibility, Mapping) else None,
        "source_ref": _source(adapter),
    }


def _check_rows(checks: Any) -> list[dict[str, Any]]:
    return [
        {"name": c.get("name"), "ok": "✓" if c.get("ok") else "✗", "message": c.get("message")}
        for c in checks or []
        if isinstance(c, Mapping)
    ]


def _print_report(compatibility: Any) -> None:
    """The checks as a table (check, ✓ or ✗, message) and the warnings, after the adapter's fields."""
    if not isinstance(compatibility, Mapping):
        return
    rows = _check_rows(compatibility.get("checks"))
    if rows:
        typer.echo("")
        print_table(rows, CHECK_COLUMNS)
    for warning in compatibility.get("warnings") or []:
        typer.echo(f"warning: {warning}")


def _show(adapter: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(adapter)
        return
    compatibility = adapter.get("compatibility")
    row = {
        **adapter,
        "lora": _lora_text(adapter.get("lora_config")),
        "source_ref": _source(adapter),
        "check": _check_status(compatibility),
    }
    print_fields(row, FIELDS)
    _print_report(compatibility)


def _refused(exc: ValidationError, note: str = "--allow-incompatible stores it disabled instead.") -> NoReturn:
    """An ADAPTER_INCOMPATIBLE refusal on stderr: the error, the failing checks as a table, what to do; exit 1."""
    from modelyard.client._adapters import failing_checks

    err = error_console()
    err.print(f"{exc.error_code}: {exc.error_msg}", style="red", markup=False)
    print_table(_check_rows(failing_checks(exc.detail)), CHECK_COLUMNS, stderr=True)
    if exc.solution_msg:
        err.print(exc.solution_msg, style="red", markup=False)
    err.print(note, style="red", markup=False)
    raise typer.Exit(1)


def _stored_disabled(adapter: Mapping[str, Any]) -> None:
    compatibility = adapter.get("compatibility")
    if isinstance(compatibility, Mapping) and compatibility.get("status") == "incompatible":
        done(f"Adapter '{adapter.get('workspace')}/{adapter.get('name')}' failed its check and is stored disabled.")


class _Tally:
    """Counts what an upload sent and skipped, for the summary line, and passes each event on to the bar."""

    def __init__(self, bar: ProgressCallback | None) -> None:
        self.bar = bar
        self.uploaded = 0
        self.skipped = 0
        self.bytes = 0

    def __call__(self, event: TransferEvent) -> None:
        if event.kind == "file_done":
            self.uploaded += 1
            self.bytes += event.size
        elif event.kind == "skipped":
            self.skipped += 1
        if self.bar is not None:
            self.bar(event)


# --- commands -----------------------------------------------------------------------------------------------------


@app.command("add")
def add_adapter(
    ctx: typer.Context,
    model: ModelArgument,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            exists=True,
            file_okay=False,
            help="The adapter's directory: adapter_config.json and its weights, as PEFT's save_pretrained writes them",
            show_default=False,
        ),
    ],
    name: NameOption,
    finetuning_type: FinetuningTypeOption = None,
    fileset: Annotated[
        str | None,
        typer.Option(
            metavar="FILESET",
            help="Upload into this fileset, NAME or WS/NAME (default: one named after the adapter; reused if it "
            "exists)",
            show_default=False,
        ),
    ] = None,
    workspace: AdapterWorkspaceOption = None,
    description: DescriptionOption = "",
    disabled: DisabledOption = False,
    model_version: ModelVersionOption = None,
    fine_tuning_job: JobOption = None,
    prompt: PromptOption = None,
    lora_rank: LoraRankOption = None,
    lora_alpha: LoraAlphaOption = None,
    lora_dropout: LoraDropoutOption = None,
    lora_target_module: LoraTargetOption = None,
    allow_incompatible: AllowIncompatibleOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a local adapter directory into a fileset and register it on a base model (editors), then show the
    report of its check against the base model's files. Exit code 1 when it is refused as incompatible; the
    uploaded files stay."""
    from modelyard.client import ValidationError
    from modelyard.client._adapters import _qualified, finetuning_type_of

    model_ws, _model_name = _split(model, "'WS/MODEL'", "model")
    lora_config = _lora_config(lora_rank, lora_alpha, lora_dropout, lora_target_module)
    if finetuning_type is None:
        try:
            finetuning_type = finetuning_type_of(directory)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--finetuning-type'") from None
    try:
        fs_ws, fs_name = _qualified(fileset or name, workspace or model_ws, "fileset")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--fileset'") from None
    fileset_ref = f"{fs_ws}/{fs_name}"
    started = time.monotonic()
    adapter: Resource | None = None
    refusal: ValidationError | None = None
    with _local_errors(), connect(ctx, url, token) as client:
        with _progress("Uploading", fileset_ref) as bar:
            tally = _Tally(bar)
            try:
                adapter = client.adapters.add_dir(
                    directory,
                    model,
                    name=name,
                    finetuning_type=finetuning_type,
                    workspace=workspace,
                    fileset=fileset_ref,
                    progress=tally,
                    description=description,
                    enabled=not disabled,
                    lora_config=lora_config,
                    model_version=model_version,
                    fine_tuning_job=fine_tuning_job,
                    prompt=prompt,
                    allow_incompatible=allow_incompatible,
                )
            except ValidationError as exc:
                if exc.error_code != "ADAPTER_INCOMPATIBLE":
                    raise
                refusal = exc
        seconds = time.monotonic() - started
    summary = _summary_line("Uploaded", tally.uploaded, tally.bytes, seconds, f"to {fileset_ref}", tally.skipped)
    if refusal is not None:
        elsewhere = f" --workspace {workspace}" if workspace else ""
        _refused(
            refusal,
            f"{summary} The files stay there: `modelyard adapters register {model} --name {name}{elsewhere} "
            f"--fileset {fileset_ref} --finetuning-type {finetuning_type}` registers them without uploading again "
            "(with --allow-incompatible, stored disabled).",
        )
    done(summary)
    assert adapter is not None  # add_dir answers the adapter or raises
    _show(adapter, as_json)
    _stored_disabled(adapter)


@app.command("register")
def register_adapter(
    ctx: typer.Context,
    model: ModelArgument,
    name: NameOption,
    finetuning_type: Annotated[
        str,
        typer.Option(
            "--finetuning-type",
            metavar="TYPE",
            help="NeMo's finetuning type, e.g. lora, dora, p_tuning, prompt_tuning (any case)",
            show_default=False,
        ),
    ],
    fileset: Annotated[
        str | None,
        typer.Option(metavar="FILESET", help="Its files are in this fileset, NAME or WS/NAME", show_default=False),
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(
            metavar="DIR", help="Its files are in this directory on the server (MODELYARD_ALLOWED_LOCAL_ROOTS)"
        ),
    ] = None,
    huggingface_name: Annotated[
        str | None,
        typer.Option(
            metavar="ORG/NAME[@REV]",
            help="It is this Hugging Face repository (checked by the worker)",
            show_default=False,
        ),
    ] = None,
    model_registry: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="It is this MLflow model: models:/NAME/VERSION or models:/NAME@ALIAS",
            show_default=False,
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(metavar="URL", help="With --model-registry: the MLflow tracking server", show_default=False),
    ] = None,
    workspace: AdapterWorkspaceOption = None,
    description: DescriptionOption = "",
    disabled: DisabledOption = False,
    model_version: ModelVersionOption = None,
    fine_tuning_job: JobOption = None,
    prompt: PromptOption = None,
    lora_rank: LoraRankOption = None,
    lora_alpha: LoraAlphaOption = None,
    lora_dropout: LoraDropoutOption = None,
    lora_target_module: LoraTargetOption = None,
    allow_incompatible: AllowIncompatibleOption = False,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an adapter whose files are already somewhere (editors): exactly one of --fileset, --location,
    --huggingface-name and --model-registry. Nothing is uploaded. Exit code 1 when it is refused as incompatible."""
    from modelyard.client import ValidationError

    model_ws, _model_name = _split(model, "'WS/MODEL'", "model")
    sources = [s for s in (fileset, location, huggingface_name, model_registry) if s is not None]
    if len(sources) != 1:
        raise typer.BadParameter(
            "Give exactly one of --fileset, --location, --huggingface-name and --model-registry",
            param_hint="'--fileset'",
        )
    if tracking_uri is not None and model_registry is None:
        raise typer.BadParameter("--tracking-uri goes with --model-registry", param_hint="'--tracking-uri'")
    registry = None
    if model_registry is not None:
        registry = {"uri": model_registry, **({"tracking_uri": tracking_uri} if tracking_uri else {})}
    lora_config = _lora_config(lora_rank, lora_alpha, lora_dropout, lora_target_module)
    with connect(ctx, url, token) as client:
        try:
            adapter = client.adapters.create(
                workspace or model_ws,
                name,
                model=model,
                finetuning_type=finetuning_type,
                fileset=fileset,
                location=location,
                huggingface_name=huggingface_name,
                model_registry=registry,
                description=description,
                enabled=not disabled,
                lora_config=lora_config,
                model_version=model_version,
                fine_tuning_job=fine_tuning_job,
                prompt=prompt,
                allow_incompatible=allow_incompatible,
                idempotency_key=idempotency_key,
            )
        except ValidationError as exc:
            if exc.error_code != "ADAPTER_INCOMPATIBLE":
                raise
            _refused(exc)
    _show(adapter, as_json)
    _stored_disabled(adapter)


@app.command("list")
def list_adapters(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    model: Annotated[
        str | None,
        typer.Option(metavar="MODEL", help="Only adapters of this model, NAME or WS/NAME", show_default=False),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enabled/--disabled", help="Only enabled, or only disabled, adapters", show_default=False),
    ] = None,
    finetuning_type: Annotated[
        str | None, typer.Option(metavar="TYPE", help="Only this finetuning type (any case)", show_default=False)
    ] = None,
    fileset: Annotated[
        str | None,
        typer.Option(metavar="FILESET", help="Only adapters whose files are this fileset, NAME or WS/NAME"),
    ] = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the adapters of a workspace, newest first, with the outcome of their check."""
    with connect(ctx, url, token) as client:
        pager = client.adapters.list(
            workspace,
            model=model,
            enabled=enabled,
            finetuning_type=finetuning_type,
            fileset=fileset,
            name_prefix=name_prefix,
            sort=sort,
            page_size=page_size_for(limit, page_size),
        )
        items = take(pager, limit)
    show_list(items if as_json else [_row(a) for a in items], as_json, COLUMNS)


@app.command("show")
def show_adapter(
    ctx: typer.Context,
    adapter: AdapterArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one adapter, with the report of its check against the base model: each check, ✓ or ✗, and why."""
    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        found = client.adapters.get(workspace, name)
    _show(found, as_json)


@app.command("update")
def update_adapter(
    ctx: typer.Context,
    adapter: AdapterArgument,
    description: Annotated[str | None, typer.Option(help="The new description", show_default=False)] = None,
    fileset: Annotated[
        str | None,
        typer.Option(metavar="FILESET", help="Repoint it to these files, NAME or WS/NAME (checked again)"),
    ] = None,
    fine_tuning_job: JobOption = None,
    prompt: PromptOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an adapter's description, fileset, fine-tuning job or prompt (editors). Its name, model, finetuning
    type and LoRA config never change."""
    from modelyard.client import ValidationError

    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        try:
            updated = client.adapters.update(
                workspace,
                name,
                description=description,
                fileset=fileset,
                fine_tuning_job=fine_tuning_job,
                prompt=prompt,
            )
        except ValidationError as exc:
            if exc.error_code != "ADAPTER_INCOMPATIBLE":
                raise
            _refused(exc)
    _show(updated, as_json)


@app.command("enable")
def enable_adapter(
    ctx: typer.Context,
    adapter: AdapterArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable an adapter, so serving engines load it (editors). One that failed its check cannot be enabled."""
    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        updated = client.adapters.enable(workspace, name)
    _show_toggled(updated, as_json)


@app.command("disable")
def disable_adapter(
    ctx: typer.Context,
    adapter: AdapterArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable an adapter: it stays registered, and serving engines unload it (editors)."""
    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        updated = client.adapters.disable(workspace, name)
    _show_toggled(updated, as_json)


def _show_toggled(adapter: Resource, as_json: bool) -> None:
    if as_json:
        print_json(adapter)
    else:
        state = "enabled" if adapter.get("enabled") else "disabled"
        done(f"Adapter '{adapter.get('workspace')}/{adapter.get('name')}' is {state}.")


@app.command("delete")
def delete_adapter(
    ctx: typer.Context,
    adapter: AdapterArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete an adapter's registration (editors). Its fileset and files stay."""
    workspace, name = _split(adapter)
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"adapter '{workspace}/{name}'",
        call=lambda client: client.adapters.delete(workspace, name),
    )


@app.command("dataset-split")
def show_dataset_split(
    ctx: typer.Context,
    adapter: AdapterArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the dataset fraction and train/test split the adapter was trained with: its fine-tuning job's, or the
    defaults 1.0 and 0.9 when it has none."""
    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        split = client.adapters.dataset_split(workspace, name)
    if as_json:
        print_json(split)
        return
    row = {**split, "fine_tuning_job": split.get("fine_tuning_job") or "none (the defaults)"}
    print_fields(row, SPLIT_FIELDS)


@app.command("lineage")
def show_lineage(
    ctx: typer.Context,
    adapter: AdapterArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show where an adapter comes from as a tree: the base model version and model it adapts, and the fine-tuning
    job, prompt and dataset that produced it. --json prints the graph's nodes and edges."""
    workspace, name = _split(adapter)
    with connect(ctx, url, token) as client:
        graph = client.adapters.lineage(workspace, name)
    if as_json:
        print_json(graph)
        return
    print_rich(_lineage_tree(graph))


def _lineage_tree(graph: Mapping[str, Any]) -> Any:
    """The graph as a Rich tree rooted at the adapter: what it adapts below it on one side, what produced it (each
    step's inputs nested under it) on the other."""
    from rich.text import Text
    from rich.tree import Tree

    nodes = {f"{n['kind']}:{n['id']}": n for n in graph.get("nodes") or [] if isinstance(n, Mapping)}
    edges = [e for e in graph.get("edges") or [] if isinstance(e, Mapping)]

    def label(key: str) -> str:
        node = nodes.get(key) or {"kind": key.partition(":")[0], "name": key}
        kind = LINEAGE_KINDS.get(str(node["kind"]), str(node["kind"]).replace("_", " "))
        where = f"{node['workspace']}/" if node.get("workspace") and node["kind"] in ("adapter", "model") else ""
        return f"{kind} {where}{node['name']}"

    root_key = next((k for k, n in nodes.items() if n["kind"] == "adapter"), None)
    tree = Tree(Text(label(root_key) if root_key else "adapter"))
    if root_key is None:
        return tree
    seen = {root_key}

    def grow(branch: Tree, key: str, downstream: bool) -> None:
        for edge in edges:
            nxt = edge["target"] if downstream else edge["source"]
            if (edge["source"] if downstream else edge["target"]) != key or nxt in seen:
                continue
            seen.add(nxt)
            relation = str(edge["relation"]).replace("_", " ")
            text = f"{relation} {label(nxt)}" if downstream else f"{relation} by {label(nxt)}"
            grow(branch.add(Text(text)), nxt, downstream)

    grow(tree, root_key, True)
    grow(tree, root_key, False)
    return tree
