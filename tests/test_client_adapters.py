"""The SDK's adapters and lineage records against the real app, on SQLite and PostgreSQL, in-process through
TestClient: real PEFT adapters (tests/fixtures/adapters/) uploaded with `add_dir` onto base models whose versions
the worker checked (`drain`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.client import (
    BadRequestError,
    Client,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    TransferEvent,
    ValidationError,
)
from modelyard.client._adapters import failing_checks, finetuning_type_of
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job.worker import Worker

ADAPTERS = Path(__file__).parent / "fixtures" / "adapters"
CHECKS = {"peft_type", "rank", "alpha", "target_modules", "tensor_shapes", "layer_indices"}


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "no-home"))


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    """The app's settings, with a directory the server may read adapters from (`location`)."""
    (tmp_path / "local").mkdir()
    return Settings(
        home=tmp_path / "home",
        database_url=db.url,
        worker=False,
        job_backoff_seconds=0.0,
        allowed_local_roots=[tmp_path / "local"],
    )  # type: ignore[arg-type]


@pytest.fixture
def sdk(app: FastAPI, admin_token: str) -> Iterator[Client]:
    with (
        TestClient(app, raise_server_exceptions=False) as http,
        Client(base_url="http://testserver", token=admin_token, http_client=http) as client,
    ):
        yield client


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test")


def drain(worker: Worker) -> None:
    while worker.run_once():
        pass


def base_model(sdk: Client, worker: Worker, name: str, base: str, ws: str = "default") -> str:
    """A model whose READY version v1 holds the config.json of tests/fixtures/adapters/bases/<base>."""
    sdk.filesets.create(ws, f"{name}-files", purpose="model")
    sdk.filesets.upload_dir(ADAPTERS / "bases" / base, f"{ws}/{name}-files")
    sdk.models.create(ws, name, version={"base_model_type": "TINY", "model_path": f"{ws}/{name}-files"})
    drain(worker)
    assert sdk.models.versions.get(ws, name, "v1")["status"] == "READY"
    return f"{ws}/{name}"


@pytest.fixture
def llama(sdk: Client, worker: Worker) -> str:
    return base_model(sdk, worker, "tiny-llama", "tiny-llama")


# --- add_dir ------------------------------------------------------------------------------------------------------


def test_add_dir_uploads_registers_and_reports(sdk: Client, llama: str) -> None:
    events: list[TransferEvent] = []
    adapter = sdk.adapters.add_dir(
        ADAPTERS / "lora-llama", llama, name="support-lora", description="Tickets", progress=events.append
    )
    assert adapter["name"] == "support-lora"
    assert adapter["workspace"] == "default"
    assert adapter["model"] == "default/tiny-llama"
    assert adapter["model_version"] == "v1"
    assert adapter["finetuning_type"] == "lora"  # from adapter_config.json's peft_type
    assert adapter["fileset"] == "default/support-lora"
    assert adapter["description"] == "Tickets"
    assert adapter["enabled"] is True
    assert adapter.etag
    assert (adapter["lora_config"]["rank"], adapter["lora_config"]["alpha"]) == (8, 16)
    report = adapter["compatibility"]
    assert report["status"] == "compatible", report
    assert report["base_version"] == "v1"
    assert {c["name"] for c in report["checks"]} >= CHECKS
    assert all(c["ok"] for c in report["checks"])
    # The fileset was made for it, with purpose model, and holds the directory's files.
    fileset = sdk.filesets.get("default", "support-lora")
    assert fileset["purpose"] == "model"
    assert adapter["digest"] == fileset["digest"]
    assert sorted(f["path"] for f in sdk.filesets.files("default", "support-lora")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert [e.kind for e in events if e.kind in ("start", "file_done")] == ["start", "file_done", "file_done"]
    # The same files again under another name, in the same fileset: reused, nothing uploaded again.
    again: list[TransferEvent] = []
    second = sdk.adapters.add_dir(
        ADAPTERS / "lora-llama", llama, name="support-lora-2", fileset="support-lora", progress=again.append
    )
    assert second["fileset"] == "default/support-lora"
    assert [e.kind for e in again].count("skipped") == 2
    assert sdk.adapters.get("default/support-lora-2") == sdk.adapters.get("default", "support-lora-2")


@pytest.mark.parametrize(
    ("base", "fixture", "finetuning_type"),
    [
        ("tiny-llama", "dora-llama", "dora"),
        ("tiny-llama", "ptuning-llama", "p_tuning"),
        ("tiny-llama", "prefix-llama", "prefix_tuning"),
        ("tiny-qwen2", "lora-qwen2", "lora"),
    ],
)
def test_add_dir_reads_the_finetuning_type(
    sdk: Client, worker: Worker, base: str, fixture: str, finetuning_type: str
) -> None:
    model = base_model(sdk, worker, base, base)
    adapter = sdk.adapters.add_dir(ADAPTERS / fixture, model, name=fixture)
    assert adapter["finetuning_type"] == finetuning_type
    assert adapter["compatibility"]["status"] == "compatible", adapter["compatibility"]


def test_add_dir_of_an_incompatible_adapter_raises_the_report(sdk: Client, llama: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sdk.adapters.add_dir(ADAPTERS / "broken-hidden-size", llama, name="broken")
    exc = caught.value
    assert exc.status_code == 422
    assert exc.error_code == "ADAPTER_INCOMPATIBLE"
    assert ["compatibility", "tensor_shapes"] in [d["loc"] for d in exc.detail]
    assert all(d["type"] == "compatibility" for d in exc.detail)
    assert "tensor_shapes" in [c["name"] for c in failing_checks(exc.detail)]
    assert "allow_incompatible" in exc.solution_msg
    with pytest.raises(NotFoundError):
        sdk.adapters.get("default", "broken")
    # The files stay, so it can be registered again without an upload: stored disabled on request.
    assert sdk.filesets.get("default", "broken")["file_count"] == 2
    stored = sdk.adapters.create(
        "default", "broken", model=llama, fileset="broken", finetuning_type="LORA", allow_incompatible=True
    )
    assert stored["enabled"] is False
    assert stored["compatibility"]["status"] == "incompatible"
    assert not all(c["ok"] for c in stored["compatibility"]["checks"])
    with pytest.raises(ConflictError) as refused:
        sdk.adapters.enable("default/broken")
    assert refused.value.error_code == "ADAPTER_INCOMPATIBLE"


@pytest.mark.parametrize(
    ("fixture", "check"),
    [("broken-target-module", "target_modules"), ("broken-rank", "rank"), ("broken-layer-index", "layer_indices")],
)
def test_add_dir_names_the_failing_check(sdk: Client, llama: str, fixture: str, check: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sdk.adapters.add_dir(ADAPTERS / fixture, llama, name=fixture)
    assert check in [c["name"] for c in failing_checks(caught.value.detail)]


def test_add_dir_into_another_workspace_and_fileset(sdk: Client, llama: str) -> None:
    sdk.workspaces.create("serving")
    adapter = sdk.adapters.add_dir(
        ADAPTERS / "lora-llama", llama, name="shared", workspace="serving", fileset="default/shared-files"
    )
    assert (adapter["workspace"], adapter["model"], adapter["fileset"]) == (
        "serving",
        "default/tiny-llama",
        "default/shared-files",
    )
    assert sdk.filesets.get("default", "shared-files")["file_count"] == 2
    assert [a["name"] for a in sdk.adapters.list("serving")] == ["shared"]
    assert list(sdk.adapters.list("default")) == []


def test_add_dir_fails_early_on_local_problems(sdk: Client, llama: str, tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        sdk.adapters.add_dir(tmp_path / "nope", llama, name="x")
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.adapters.add_dir(ADAPTERS / "lora-llama", "tiny-llama", name="x")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="finetuning type"):
        sdk.adapters.add_dir(empty, llama, name="x")
    assert list(sdk.filesets.list("default", name_prefix="x")) == []  # nothing was sent


def _config(tmp_path: Path, **config: object) -> Path:
    directory = tmp_path / "adapter"
    directory.mkdir(exist_ok=True)
    (directory / "adapter_config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"peft_type": "LORA"}, "lora"),
        ({"peft_type": "LORA", "use_dora": True}, "dora"),
        ({"peft_type": "lora", "use_dora": False}, "lora"),
        ({"peft_type": "ADALORA"}, "adalora"),
        ({"peft_type": "P_TUNING"}, "p_tuning"),
        ({"peft_type": "PROMPT_TUNING"}, "prompt_tuning"),
        ({"peft_type": "PREFIX_TUNING"}, "prefix_tuning"),
    ],
)
def test_finetuning_type_of(tmp_path: Path, config: dict[str, object], expected: str) -> None:
    assert finetuning_type_of(_config(tmp_path, **config)) == expected


def test_finetuning_type_of_refuses_what_it_cannot_map(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'IA3'"):
        finetuning_type_of(_config(tmp_path, peft_type="IA3"))
    with pytest.raises(ValueError, match="no 'peft_type'"):
        finetuning_type_of(_config(tmp_path, r=8))
    (tmp_path / "adapter" / "adapter_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read as JSON"):
        finetuning_type_of(tmp_path / "adapter")


# --- the other calls ----------------------------------------------------------------------------------------------


def test_enable_disable_update_and_delete(sdk: Client, llama: str) -> None:
    sdk.adapters.add_dir(ADAPTERS / "lora-llama", llama, name="a")
    disabled = sdk.adapters.disable("default", "a")
    assert disabled["enabled"] is False
    assert disabled.etag
    assert sdk.adapters.enable("default/a", if_match=disabled.etag)["enabled"] is True
    with pytest.raises(PreconditionFailedError):
        sdk.adapters.update("default", "a", description="lost update", if_match=disabled.etag)
    current = sdk.adapters.get("default", "a")
    assert sdk.adapters.update("default/a", description="fresh", if_match=current.etag)["description"] == "fresh"
    with pytest.raises(ValidationError, match="is required"):
        sdk.adapters.update("default", "a", fileset="")
    actions = [e["action"] for e in sdk.events.list("default", resource_kind="adapter", sort="at")]
    assert actions == ["adapter.created", "adapter.disabled", "adapter.enabled", "adapter.updated"]
    sdk.adapters.delete("default", "a")
    with pytest.raises(NotFoundError) as missing:
        sdk.adapters.get("default", "a")
    assert missing.value.error_code == "ADAPTER_NOT_FOUND"
    assert sdk.filesets.get("default", "a")["file_count"] == 2  # the files stay
    with pytest.raises(ValueError, match="either"):
        sdk.adapters.get("default/a", "a")
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.adapters.get("a")


def test_list_filters(sdk: Client, worker: Worker, llama: str) -> None:
    qwen = base_model(sdk, worker, "tiny-qwen2", "tiny-qwen2")
    sdk.adapters.add_dir(ADAPTERS / "lora-llama", llama, name="llama-lora")
    sdk.adapters.add_dir(ADAPTERS / "dora-llama", llama, name="llama-dora", enabled=False)
    sdk.adapters.add_dir(ADAPTERS / "lora-qwen2", qwen, name="qwen-lora")

    def names(**filters: object) -> list[str]:
        return sorted(a["name"] for a in sdk.adapters.list("default", **filters))  # type: ignore[arg-type]

    assert names() == ["llama-dora", "llama-lora", "qwen-lora"]
    assert names(model="tiny-llama") == ["llama-dora", "llama-lora"]
    assert names(model="default/tiny-qwen2") == ["qwen-lora"]
    assert names(enabled=False) == ["llama-dora"]
    assert names(enabled=True, finetuning_type="LORA") == ["llama-lora", "qwen-lora"]
    assert names(fileset="default/qwen-lora") == ["qwen-lora"]
    assert names(name_prefix="llama-") == ["llama-dora", "llama-lora"]
    assert [a["name"] for a in sdk.adapters.list("default", sort="name", page_size=1)] == [
        "llama-dora",
        "llama-lora",
        "qwen-lora",
    ]
    assert sdk.adapters.list("default", model="tiny-llama").total_results == 2
    with pytest.raises(BadRequestError) as unknown:
        list(sdk.adapters.list("default", colour="red"))
    assert "finetuning_type" in unknown.value.detail["valid"]


def test_other_sources(sdk: Client, llama: str, tmp_path: Path) -> None:
    local = tmp_path / "local" / "lora"
    shutil.copytree(ADAPTERS / "lora-llama", local)
    from_dir = sdk.adapters.create(
        "default", "on-disk", model="tiny-llama", location=str(local), finetuning_type="lora"
    )
    assert from_dir["source"] == {"type": "location"}
    assert from_dir["compatibility"]["status"] == "compatible"
    registry = sdk.adapters.create(
        "default", "from-mlflow", model=llama, model_registry="models:/support-lora/3", finetuning_type="lora"
    )
    assert registry["model_registry"] == {"uri": "models:/support-lora/3", "tracking_uri": None}
    assert registry["compatibility"]["status"] == "unknown"
    hub = sdk.adapters.create(
        "default",
        "from-hub",
        model=llama,
        huggingface_name="acme/support-lora@main",
        finetuning_type="lora",
        lora_config={"rank": 8, "alpha": 16},
        idempotency_key="hub-1",
    )
    assert hub["source"]["type"] == "huggingface"
    assert hub["compatibility"]["status"] == "unknown"  # until the worker has read it
    again = sdk.adapters.create(
        "default",
        "from-hub",
        model=llama,
        huggingface_name="acme/support-lora@main",
        finetuning_type="lora",
        lora_config={"rank": 8, "alpha": 16},
        idempotency_key="hub-1",
    )
    assert again["id"] == hub["id"]
    with pytest.raises(ValidationError, match="exactly one source"):
        sdk.adapters.create("default", "x", model=llama, finetuning_type="lora")
    with pytest.raises(ConflictError) as taken:
        sdk.adapters.create("default", "on-disk", model=llama, location=str(local), finetuning_type="lora")
    assert taken.value.error_code == "ADAPTER_ALREADY_EXISTS"


# --- lineage ------------------------------------------------------------------------------------------------------


def test_lineage_records_and_the_adapter_graph(sdk: Client, llama: str) -> None:
    dataset = sdk.datasets.create(
        "default",
        "tickets",
        source={"type": "huggingface", "ref": "acme/tickets"},
        description="Support tickets",
        features=["question", "answer"],
    )
    assert (dataset["name"], dataset["source"], dataset["features"]) == (
        "tickets",
        {"type": "huggingface", "ref": "acme/tickets"},
        ["question", "answer"],
    )
    prompt = sdk.prompts.create(
        "default",
        "support",
        dataset="tickets",
        prompt_template="Q: {question}\nA: {answer}",
        input_template="Q: {question}\nA:",
        completion_template=" {answer}",
    )
    assert prompt["dataset"] == "tickets"
    job = sdk.fine_tuning_jobs.create(
        "default",
        "job-1",
        base_model=llama,
        base_model_version="v1",
        dataset="tickets",
        prompt="support",
        adapter_name="support-lora",
        dataset_fraction=0.5,
        train_test_split=0.8,
        hyperparameters={"epochs": 3, "learning_rate": 2e-4},
        status="RUNNING",
        started_at="2025-06-02T09:00:00Z",
    )
    assert (job["base_model"], job["base_model_version"], job["status"]) == ("default/tiny-llama", "v1", "RUNNING")
    assert job["hyperparameters"] == {"epochs": 3, "learning_rate": 2e-4}
    defaults = sdk.fine_tuning_jobs.create("default", "job-2", base_model="tiny-llama")
    assert (defaults["dataset_fraction"], defaults["train_test_split"], defaults["status"]) == (1.0, 0.9, "PENDING")

    adapter = sdk.adapters.add_dir(
        ADAPTERS / "lora-llama", llama, name="support-lora", fine_tuning_job="job-1", prompt="support"
    )
    assert (adapter["fine_tuning_job"], adapter["prompt"]) == ("job-1", "support")
    split = sdk.adapters.dataset_split("default/support-lora")
    assert split["dataset_fraction"] == pytest.approx(0.5)
    assert split["train_test_split"] == pytest.approx(0.8)
    assert split["fine_tuning_job"] == "job-1"
    graph = sdk.adapters.lineage("default", "support-lora")
    assert {n["kind"]: n["name"] for n in graph["nodes"]} == {
        "dataset": "tickets",
        "prompt": "support",
        "fine_tuning_job": "job-1",
        "adapter": "support-lora",
        "model_version": "v1",
        "model": "tiny-llama",
    }
    assert len(graph["edges"]) == 5

    plain = sdk.adapters.add_dir(ADAPTERS / "lora-llama", llama, name="plain", fileset="support-lora")
    assert plain["fine_tuning_job"] is None
    assert sdk.adapters.dataset_split("default", "plain") == {
        "dataset_fraction": 1.0,
        "train_test_split": 0.9,
        "fine_tuning_job": None,
    }
    linked = sdk.adapters.update("default", "plain", fine_tuning_job="job-2")
    assert linked["fine_tuning_job"] == "job-2"
    with pytest.raises(NotFoundError) as no_job:
        sdk.adapters.update("default", "plain", fine_tuning_job="job-9")
    assert no_job.value.error_msg == "Fine Tuning Job with name 'job-9' does not exist in workspace 'default'."

    # list / get / update / delete of each kind
    assert [d["name"] for d in sdk.datasets.list("default", name_prefix="tick")] == ["tickets"]
    assert [p["name"] for p in sdk.prompts.list("default")] == ["support"]
    assert [j["name"] for j in sdk.fine_tuning_jobs.list("default", status="PENDING")] == ["job-2"]
    assert [j["name"] for j in sdk.fine_tuning_jobs.list("default", sort="name")] == ["job-1", "job-2"]
    current = sdk.datasets.get("default/tickets")
    assert current.etag
    updated = sdk.datasets.update("default", "tickets", features=["q", "a"], if_match=current.etag)
    assert updated["features"] == ["q", "a"]
    with pytest.raises(PreconditionFailedError):
        sdk.datasets.update("default", "tickets", description="stale", if_match=current.etag)
    assert sdk.prompts.update("default/support", completion_template="{answer}")["completion_template"] == "{answer}"
    finished = sdk.fine_tuning_jobs.update(
        "default", "job-1", status="COMPLETED", finished_at="2025-06-02T10:00:00+00:00"
    )
    assert finished["status"] == "COMPLETED"
    assert finished["finished_at"].startswith("2025-06-02T10:00:00")
    assert sdk.prompts.get("default", "support")["dataset"] == "tickets"
    sdk.fine_tuning_jobs.delete("default", "job-2")
    with pytest.raises(NotFoundError) as gone:
        sdk.fine_tuning_jobs.get("default/job-2")
    assert gone.value.error_code == "FINE_TUNING_JOB_NOT_FOUND"
    with pytest.raises(ConflictError) as duplicate:
        sdk.datasets.create("default", "tickets", source={"type": "url", "ref": "https://example.com/t.jsonl"})
    assert duplicate.value.error_code == "DATASET_ALREADY_EXISTS"
    with pytest.raises(ValidationError):
        sdk.fine_tuning_jobs.create("default", "bad", base_model=llama, dataset_fraction=1.5)
    sdk.prompts.delete("default", "support")
    sdk.datasets.delete("default/tickets")
    assert list(sdk.datasets.list("default")) == []
