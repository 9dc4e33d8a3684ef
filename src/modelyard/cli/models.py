"""`modelyard models ...`: models, their versions, the current version, and `modelyard base-model-types`.

A new version is CREATING until the server's worker has checked its files; `--wait` follows the check with a spinner
(on a terminal) and exits 0 when the version is READY, 1 when it FAILED (printing why) or the wait timed out."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

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
    print_json,
    print_yaml,
    show,
    show_list,
    take,
)

if TYPE_CHECKING:
    from rich.status import Status

    from modelyard.client import Client, Resource

app = typer.Typer(
    help="Models: LLMs in a workspace, their versions (checked by the server's worker) and the current version.",
    no_args_is_help=True,
)
versions_app = typer.Typer(
    help="Versions of a model: where its files are, their check (CREATING, then READY or FAILED) and manifest.",
    no_args_is_help=True,
)
app.add_typer(versions_app, name="versions")

DEFAULT_TIMEOUT = 3600.0

WorkspaceArgument = Annotated[str, typer.Argument(metavar="WS", help="Workspace name", show_default=False)]
ModelArgument = Annotated[
    str, typer.Argument(metavar="WS/MODEL", help="The model, as workspace/name", show_default=False)
]
VersionArgument = Annotated[str, typer.Argument(metavar="VERSION", help="Version name", show_default=False)]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--type",
        metavar="TYPE",
        help="COMPLETION, CHAT_COMPLETION, AGENT, EMBEDDING, RERANKING or GENERIC (any case)",
        show_default=False,
    ),
]
VisibilityOption = Annotated[
    str | None,
    typer.Option(
        metavar="VISIBILITY",
        help="PRIVATE, or PUBLIC: readable by every authenticated user (any case)",
        show_default=False,
    ),
]
DisplayNameOption = Annotated[str | None, typer.Option(help="A name for people", show_default=False)]
BaseModelTypeOption = Annotated[
    str | None,
    typer.Option(
        metavar="TYPE", help="The version's base model type, e.g. LLAMA_3_2_1B or QWEN_2_72B", show_default=False
    ),
]
ModelPathOption = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
        help="Where the files are: a fileset WS/FILESET or fileset://WS/FILESET/DIR, s3://BUCKET/PREFIX, "
        "or hf://ORG/NAME[@REVISION]",
        show_default=False,
    ),
]
LocalModelPathOption = Annotated[
    str | None,
    typer.Option(
        metavar="DIR", help="A directory on the server, under MODELYARD_ALLOWED_LOCAL_ROOTS", show_default=False
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option("--wait", help="Wait until the version is READY (exit 0) or FAILED (exit 1), with a spinner"),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", min=0, help="Give up waiting after this long (exit 1)"),
]

MODEL_COLUMNS = [
    ("name", "NAME"),
    ("model_type", "TYPE"),
    ("visibility", "VISIBILITY"),
    ("current", "CURRENT"),
    ("labels", "LABELS"),
    ("description", "DESCRIPTION"),
    ("updated_at", "UPDATED"),
]
VERSION_COLUMNS = [
    ("name", "NAME"),
    ("status", "STATUS"),
    ("is_current", "CURRENT"),
    ("base_model_type", "BASE MODEL TYPE"),
    ("path", "PATH"),
    ("file_count", "FILES"),
    ("size", "SIZE"),
    ("created_at", "CREATED"),
    ("status_message", "MESSAGE"),
]
BINDING_COLUMNS = [("name", "NAME"), ("value", "VALUE"), ("type", "TYPE")]
FILE_COLUMNS = [("path", "PATH"), ("size", "SIZE"), ("sha256", "SHA256")]
BASE_MODEL_TYPE_COLUMNS = [
    ("base_model_type", "BASE MODEL TYPE"),
    ("versions", "VERSIONS"),
    ("ready_versions", "READY"),
    ("architectures", "ARCHITECTURES"),
    ("families", "FAMILIES"),
    ("max_position_embeddings", "CONTEXT"),
]
SPEC_FIELDS = [
    ("architecture", "architecture"),
    ("family", "family"),
    ("num_parameters", "parameters"),
    ("dtype", "dtype"),
    ("num_layers", "layers"),
    ("hidden_size", "hidden size"),
    ("num_attention_heads", "attention heads"),
    ("num_kv_heads", "kv heads"),
    ("head_dim", "head dim"),
    ("intermediate_size", "intermediate size"),
    ("vocab_size", "vocab size"),
    ("max_position_embeddings", "context length"),
]


# --- arguments ----------------------------------------------------------------------------------------------------


def _split(ref: str, param_hint: str = "'WS/MODEL'") -> tuple[str, str]:
    from modelyard.client._models import split_model

    try:
        return split_model(ref)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from None


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


def _labels(values: Sequence[str] | None) -> dict[str, str] | None:
    """--label KEY=VALUE options as a dict (None when none were given)."""
    if not values:
        return None
    labels: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE (e.g. team=nlp)", param_hint="--label")
        labels[key] = text
    return labels


def _assignments(values: Sequence[str] | None, option: str, example: str) -> dict[str, str] | None:
    """Repeated KEY=VALUE options as a dict of strings (None when none were given); the server reads each value
    as its parameter's declared type ("8192" as 8192 for an int)."""
    if not values:
        return None
    found: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE (e.g. {example})", param_hint=option)
        found[key] = text
    return found


def _version_options(
    base_model_type: str | None,
    model_path: str | None,
    local_model_path: str | None,
    name: str | None = None,
    description: str | None = None,
) -> dict[str, Any] | None:
    """The version the options describe, or None when none was; a usage error when they do not add up."""
    if base_model_type is None and model_path is None and local_model_path is None:
        return None
    if (model_path is None) == (local_model_path is None):
        raise typer.BadParameter("Give exactly one of --model-path and --local-model-path", param_hint="'--model-path'")
    if base_model_type is None:
        raise typer.BadParameter("A version needs its --base-model-type", param_hint="'--base-model-type'")
    version: dict[str, Any] = {"base_model_type": base_model_type}
    for key, value in (
        ("model_path", model_path),
        ("local_model_path", local_model_path),
        ("name", name),
        ("description", description),
    ):
        if value is not None:
            version[key] = value
    return version


# --- rendering ----------------------------------------------------------------------------------------------------


def _size(value: Any) -> str:
    from rich.filesize import decimal

    return decimal(int(value)) if isinstance(value, int) else "-"


def _count(value: Any) -> Any:
    """A parameter count for people: 1235814400 as '1.24B (1235814400)'."""
    if not isinstance(value, int) or value < 1000:
        return value
    scale, suffix = next((s, x) for s, x in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")) if value >= s)
    return f"{value / scale:.3g}{suffix} ({value})"


def _label_text(labels: Any) -> str:
    if not isinstance(labels, Mapping) or not labels:
        return "-"
    return ", ".join(f"{key}={value}" for key, value in labels.items())


def _short_digest(digest: Any) -> str:
    return str(digest)[:12] if digest else "-"


def _spec_rows(spec: Any, header: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The spec under a header row, its fields indented; nothing when the spec is empty."""
    if not isinstance(spec, Mapping) or not any(spec.get(key) is not None for key, _label in SPEC_FIELDS):
        return {}, []
    row: dict[str, Any] = {"spec": header}
    fields = [("spec", "spec")]
    for key, label in SPEC_FIELDS:
        row[f"spec.{key}"] = _count(spec.get(key)) if key == "num_parameters" else spec.get(key)
        fields.append((f"spec.{key}", f"  {label}"))
    return row, fields


def _model_table(model: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    current = model.get("current_version")
    row: dict[str, Any] = {
        **model,
        "labels": _label_text(model.get("labels")),
        "current": (
            f"{current['name']} ({current['status']}, digest {_short_digest(current.get('digest'))})"
            if isinstance(current, Mapping)
            else None
        ),
    }
    fields = [
        ("name", "name"),
        ("id", "id"),
        ("workspace", "workspace"),
        ("description", "description"),
        ("model_type", "type"),
        ("display_name", "display name"),
        ("visibility", "visibility"),
        ("labels", "labels"),
    ]
    for key, label in (
        ("base_model_metadata", "base model metadata"),
        ("model_card", "model card"),
        ("training_data_card", "training data card"),
    ):
        if model.get(key):
            fields.append((key, label))
    if model.get("model_template"):
        row["creation_parameters"] = _label_text(model.get("model_creation_parameters"))
        fields += [("model_template", "template"), ("creation_parameters", "creation parameters")]
    fields.append(("current", "current version"))
    new_version = model.get("new_version")
    if isinstance(new_version, Mapping):
        message = f": {new_version['status_message']}" if new_version.get("status_message") else ""
        row["new"] = f"{new_version['name']} ({new_version['status']}{message})"
        fields.append(("new", "new version"))
    fields += [
        ("created_by", "created by"),
        ("created_at", "created at"),
        ("updated_by", "updated by"),
        ("updated_at", "updated at"),
    ]
    if isinstance(current, Mapping):
        spec_row, spec_fields = _spec_rows(model.get("spec"), f"of the current version, {current['name']}")
        row.update(spec_row)
        fields += spec_fields
    return row, fields


def _show_model(model: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(model)
        return
    row, fields = _model_table(model)
    show(row, False, fields)


def _report_coercions(answer: Mapping[str, Any]) -> None:
    """What the server read as another type ("8192" as the int 8192), one line each on stderr."""
    for item in answer.get("coercions") or []:
        if isinstance(item, Mapping):
            name = str((item.get("loc") or ["?"])[-1])
            done(f"Read {name}={json.dumps(item.get('input'))} as {item.get('type')} {json.dumps(item.get('value'))}.")


def _print_document(data: Mapping[str, Any], as_json: bool) -> None:
    """A nested document for people as YAML, for scripts as JSON."""
    if as_json:
        print_json(data)
    else:
        print_yaml(data)


def _model_row(model: Mapping[str, Any]) -> dict[str, Any]:
    current = model.get("current_version")
    return {
        **model,
        "current": current["name"] if isinstance(current, Mapping) else None,
        "labels": _label_text(model.get("labels")),
    }


def _llm_config(version: Mapping[str, Any]) -> Mapping[str, Any]:
    config = (version.get("config") or {}).get("llm_model_config") or {}
    return config if isinstance(config, Mapping) else {}


def _version_table(version: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    config = _llm_config(version)
    source = version.get("source") or {}
    pinned = source.get("pinned") if isinstance(source, Mapping) else None
    row: dict[str, Any] = {
        **version,
        "base_model_type": config.get("base_model_type"),
        "model_path": config.get("model_path") or None,
        "local_model_path": config.get("local_model_path") or None,
        "source": source.get("ref") if isinstance(source, Mapping) else None,
        "pinned": pinned,
        "size": _size(version.get("total_size")),
    }
    fields = [
        ("name", "name"),
        ("id", "id"),
        ("model", "model"),
        ("description", "description"),
        ("status", "status"),
    ]
    if version.get("status_message"):
        fields.append(("status_message", "status message"))
    fields.append(("base_model_type", "base model type"))
    fields.append(("local_model_path", "local model path") if row["local_model_path"] else ("model_path", "model path"))
    fields.append(("source", "source"))
    if pinned:
        fields.append(("pinned", "pinned"))
    fields += [
        ("digest", "digest"),
        ("file_count", "files"),
        ("size", "size"),
        ("is_current", "current"),
        ("created_by", "created by"),
        ("created_at", "created at"),
        ("updated_at", "updated at"),
    ]
    spec_row, spec_fields = _spec_rows(version.get("spec"), "read from its files")
    row.update(spec_row)
    return row, fields + spec_fields


def _show_version(version: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(version)
        return
    row, fields = _version_table(version)
    show(row, False, fields)


def _version_row(version: Mapping[str, Any]) -> dict[str, Any]:
    config = _llm_config(version)
    return {
        **version,
        "base_model_type": config.get("base_model_type"),
        "path": config.get("model_path") or config.get("local_model_path"),
        "size": _size(version.get("total_size")) if version.get("status") == "READY" else None,
        "file_count": version.get("file_count") if version.get("status") == "READY" else None,
        "status_message": version.get("status_message") or None,
    }


# --- waiting ------------------------------------------------------------------------------------------------------


class _Spinner:
    """A Rich spinner on stderr while a version is checked, when stderr is a terminal; else nothing."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.console = error_console()
        self.status: Status | None = None

    def __enter__(self) -> _Spinner:
        if self.console.is_terminal:
            self.status = self.console.status(f"Waiting for {self.what}", spinner="dots")
            self.status.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.status is not None:
            self.status.stop()

    def __call__(self, version: Resource) -> None:
        if self.status is not None:
            elapsed = time.monotonic() - self.started
            self.status.update(f"Waiting for {self.what}: {version.get('status')} ({elapsed:.0f} s)")


def _wait(client: Client, workspace: str, model: str, version: str, timeout: float) -> Resource:
    with _Spinner(f"{workspace}/{model} version {version}") as spinner:
        return client.models.versions.wait(workspace, model, version, timeout=timeout, progress=spinner)


def _finish(version: Mapping[str, Any]) -> None:
    """After a wait: a line on stderr, and exit code 1 with the reason when the version FAILED."""
    where = f"Version '{version.get('name')}' of model '{version.get('model')}'"
    if version.get("status") == "READY":
        done(f"{where} is READY: {version.get('file_count')} files, {_size(version.get('total_size'))}.")
        return
    err = error_console()
    err.print(f"VERSION_FAILED: {where} failed: {version.get('status_message')}", style="red", markup=False)
    err.print(
        "Fix the files or the path, then add a new version (modelyard models versions create)",
        style="red",
        markup=False,
    )
    raise typer.Exit(1)


# --- models -------------------------------------------------------------------------------------------------------


@app.command("create")
def create_model(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    name: Annotated[str, typer.Argument(help="Model name", show_default=False)],
    model_type: TypeOption = None,
    description: Annotated[str, typer.Option(help="Free text, at most 1024 characters")] = "",
    display_name: DisplayNameOption = None,
    visibility: VisibilityOption = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="KEY=VALUE", help="A label; repeat for more", show_default=False),
    ] = None,
    base_model_type: BaseModelTypeOption = None,
    model_path: ModelPathOption = None,
    local_model_path: LocalModelPathOption = None,
    version_name: Annotated[
        str | None, typer.Option(help="The first version's name (default v1)", show_default=False)
    ] = None,
    version_description: Annotated[
        str | None, typer.Option(help="The first version's description", show_default=False)
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="TEMPLATE",
            help="Make the model from this model template: NAME (same workspace) or WS/NAME",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="KEY=VALUE",
            help="A creation parameter of the template (read as its declared type); repeat for more",
            show_default=False,
        ),
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a model (editors), with a first version when --base-model-type and a path are given, or from a
    model template with --template and its creation parameters as --param KEY=VALUE."""
    from modelyard.client import Resource

    labels = _labels(label)
    parameters = _assignments(param, "'--param'", "max_model_len=8192")
    if parameters is not None and template is None:
        raise typer.BadParameter("--param needs --template: parameters are the template's", param_hint="'--param'")
    version = _version_options(base_model_type, model_path, local_model_path, version_name, version_description)
    if wait and version is None:
        raise typer.BadParameter(
            "--wait needs a version: give --base-model-type and --model-path or --local-model-path",
            param_hint="'--wait'",
        )
    final: Resource | None = None
    with connect(ctx, url, token) as client:
        created = client.models.create(
            workspace,
            name,
            description=description,
            model_type=_upper(model_type),
            display_name=display_name,
            visibility=_upper(visibility),
            labels=labels,
            version=version,
            idempotency_key=idempotency_key,
            model_template=template,
            model_creation_parameters=parameters if parameters is not None else ({} if template else None),
        )
        new_version = created.get("new_version")
        if wait and isinstance(new_version, Mapping):
            final = _wait(client, workspace, name, str(new_version["name"]), timeout)
            created = Resource(
                {**client.models.get(workspace, name), "new_version": final, "coercions": created.get("coercions")}
            )
    _show_model(created, as_json)
    _report_coercions(created)
    if final is not None:
        _finish(final)


@app.command("list")
def list_models(
    ctx: typer.Context,
    workspace: WorkspaceArgument,
    model_type: TypeOption = None,
    visibility: VisibilityOption = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="KEY=VALUE",
            help="Only models with this label; repeat: all must match",
            show_default=False,
        ),
    ] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the models of a workspace, newest first."""
    labels = _labels(label)
    with connect(ctx, url, token) as client:
        pager = client.models.list(
            workspace,
            model_type=_upper(model_type),
            visibility=_upper(visibility),
            name_prefix=name_prefix,
            label=[f"{key}:{value}" for key, value in labels.items()] if labels else None,
            sort=sort,
            page_size=page_size_for(limit, page_size),
        )
        items = take(pager, limit)
    show_list(items if as_json else [_model_row(m) for m in items], as_json, MODEL_COLUMNS)


@app.command("show")
def show_model(
    ctx: typer.Context,
    model: ModelArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one model, with its current version and that version's spec (read from its config.json)."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        found = client.models.get(workspace, name)
    _show_model(found, as_json)


@app.command("update")
def update_model(
    ctx: typer.Context,
    model: ModelArgument,
    description: Annotated[str | None, typer.Option(help="The new description", show_default=False)] = None,
    model_type: TypeOption = None,
    display_name: DisplayNameOption = None,
    visibility: VisibilityOption = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", metavar="KEY=VALUE", help="The new labels, replacing all of them; repeat", show_default=False
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change the fields whose options are given (editors)."""
    workspace, name = _split(model)
    labels = _labels(label)
    with connect(ctx, url, token) as client:
        updated = client.models.update(
            workspace,
            name,
            description=description,
            model_type=_upper(model_type),
            display_name=display_name,
            visibility=_upper(visibility),
            labels=labels,
        )
    _show_model(updated, as_json)


@app.command("set-current")
def set_current_version(
    ctx: typer.Context,
    model: ModelArgument,
    version: Annotated[str, typer.Argument(metavar="VERSION", help="Version name (or id)", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a READY version the model's current version (editors)."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        updated = client.models.set_current(workspace, name, version)
    _show_model(updated, as_json)


@app.command("delete")
def delete_model(
    ctx: typer.Context,
    model: ModelArgument,
    cascade: Annotated[bool, typer.Option("--cascade", help="Also delete the adapters that refer to it")] = False,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a model and its versions (editors). Refused while adapters refer to it, unless --cascade."""
    workspace, name = _split(model)
    extra = " and the adapters that refer to it" if cascade else ""
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"model '{workspace}/{name}'",
        call=lambda client: client.models.delete(workspace, name, cascade=cascade),
        question=f"Delete model '{workspace}/{name}' with all its versions{extra}?",
    )


@app.command("launch-config")
def launch_config(
    ctx: typer.Context,
    model: ModelArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the launch configuration of a model made from a template, as YAML: the template's, with the model's
    creation parameters in place of each ${name} and exported in bundle_config.env."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        config = client.models.launch_config(workspace, name)
    _print_document(config, as_json)


@app.command("request-schema")
def request_schema(
    ctx: typer.Context,
    model: ModelArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the JSON Schema of a whole request to the model (for its type and its template's request parameters),
    as YAML."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        schema = client.models.request_schema(workspace, name)
    _print_document(schema, as_json)


@app.command("validate-request")
def validate_request(
    ctx: typer.Context,
    model: ModelArgument,
    binding: Annotated[
        list[str] | None,
        typer.Option(
            "--binding",
            metavar="KEY=VALUE",
            help="A request parameter (read as its declared type); repeat for more",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check request parameters against the model's template: the normalised bindings (exit 0), or every offending
    parameter (exit 1)."""
    workspace, name = _split(model)
    bindings = _assignments(binding, "'--binding'", "lang=en") or {}
    with connect(ctx, url, token) as client:
        answer = client.models.validate_request(workspace, name, bindings)
    if as_json:
        print_json(answer)
    else:
        normalised = (answer.get("model_request_parameters") or {}).get("bindings") or {}
        rows = [
            {"name": k, "value": v if isinstance(v, str) else json.dumps(v), "type": type(v).__name__}
            for k, v in normalised.items()
        ]
        show_list(rows, False, BINDING_COLUMNS)
    _report_coercions(answer)


def base_model_types(
    ctx: typer.Context,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the base model types of the versions you can see, with what their configs said."""
    with connect(ctx, url, token) as client:
        types = client.base_model_types()
    if as_json:
        print_json(types)
        return
    rows = [
        {
            **t,
            "architectures": ", ".join(t.get("architectures") or []) or None,
            "families": ", ".join(t.get("families") or []) or None,
        }
        for t in types
    ]
    show_list(rows, False, BASE_MODEL_TYPE_COLUMNS)


# --- versions -----------------------------------------------------------------------------------------------------


@versions_app.command("create")
def create_version(
    ctx: typer.Context,
    model: ModelArgument,
    base_model_type: Annotated[
        str,
        typer.Option(metavar="TYPE", help="The base model type, e.g. LLAMA_3_2_1B or QWEN_2_72B", show_default=False),
    ],
    model_path: ModelPathOption = None,
    local_model_path: LocalModelPathOption = None,
    name: Annotated[str | None, typer.Option(help="Version name (default: v1, v2, ...)", show_default=False)] = None,
    description: Annotated[str, typer.Option(help="Free text, at most 1024 characters")] = "",
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    idempotency_key: IdempotencyOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a version (editors). It is CREATING until the server's worker has checked its files."""
    workspace, model_name = _split(model)
    _version_options(base_model_type, model_path, local_model_path)
    with connect(ctx, url, token) as client:
        version = client.models.versions.create(
            workspace,
            model_name,
            base_model_type=base_model_type,
            model_path=model_path,
            local_model_path=local_model_path,
            name=name,
            description=description,
            idempotency_key=idempotency_key,
        )
        if wait:
            version = _wait(client, workspace, model_name, str(version["name"]), timeout)
    _show_version(version, as_json)
    if wait:
        _finish(version)


@versions_app.command("list")
def list_versions(
    ctx: typer.Context,
    model: ModelArgument,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="CREATING, READY or FAILED (any case)", show_default=False)
    ] = None,
    name_prefix: Annotated[str | None, typer.Option(help="Only names starting with this", show_default=False)] = None,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a model's versions, newest first."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        pager = client.models.versions.list(
            workspace,
            name,
            status=_upper(status),
            name_prefix=name_prefix,
            sort=sort,
            page_size=page_size_for(limit, page_size),
        )
        items = take(pager, limit)
    show_list(items if as_json else [_version_row(v) for v in items], as_json, VERSION_COLUMNS)


@versions_app.command("show")
def show_version(
    ctx: typer.Context,
    model: ModelArgument,
    version: VersionArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version: status (and why, if it FAILED), where its files are, digest and spec."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        found = client.models.versions.get(workspace, name, version)
    _show_version(found, as_json)


@versions_app.command("files")
def list_version_files(
    ctx: typer.Context,
    model: ModelArgument,
    version: VersionArgument,
    sort: SortOption = None,
    limit: LimitOption = None,
    page_size: PageSizeOption = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the manifest of a READY version: path, size and sha256 (the first 12 characters; --json for all)."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        pager = client.models.versions.files(
            workspace, name, version, sort=sort, page_size=page_size_for(limit, page_size)
        )
        items = take(pager, limit)
    if as_json:
        print_json(items)
        return
    rows = [{**f, "size": _size(f.get("size")), "sha256": str(f.get("sha256", ""))[:12]} for f in items]
    show_list(rows, False, FILE_COLUMNS)


@versions_app.command("update")
def update_version(
    ctx: typer.Context,
    model: ModelArgument,
    version: VersionArgument,
    description: Annotated[str, typer.Option(help="The new description", show_default=False)],
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a version's description (editors)."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        updated = client.models.versions.update(workspace, name, version, description=description)
    _show_version(updated, as_json)


@versions_app.command("delete")
def delete_version(
    ctx: typer.Context,
    model: ModelArgument,
    version: VersionArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a version (editors). Refused while it is the current version or adapters were trained on it."""
    workspace, name = _split(model)
    delete_confirmed(
        ctx,
        url,
        token,
        yes=yes,
        what=f"version '{version}' of model '{workspace}/{name}'",
        call=lambda client: client.models.versions.delete(workspace, name, version),
    )


@versions_app.command("wait")
def wait_for_version(
    ctx: typer.Context,
    model: ModelArgument,
    version: VersionArgument,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until a version is READY (exit 0) or FAILED (exit 1, printing why), with a spinner on a terminal."""
    workspace, name = _split(model)
    with connect(ctx, url, token) as client:
        final = _wait(client, workspace, name, version, timeout)
    _show_version(final, as_json)
    _finish(final)
