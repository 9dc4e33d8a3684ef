"""The SDK's models and versions against the real app, on SQLite and PostgreSQL: in-process through TestClient with
the worker's jobs run in the test (`drain`), or with a worker thread where a wait must end by itself; and the
Models examples of docs/sdk.md, against a live server with a worker."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.client import (
    BadRequestError,
    Client,
    ConflictError,
    ModelyardError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
    WaitTimeoutError,
)
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job.worker import Worker
from tests.fixtures.models import config_bytes, numel, safetensors_bytes, tiny_llama_tensors

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "no-home"))


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    """The app's settings, with a directory the server may read local model paths from."""
    (tmp_path / "local").mkdir()
    return Settings(
        home=tmp_path / "home",
        database_url=db.url,
        worker=False,
        job_poll_seconds=0.05,
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
    """A worker whose jobs the test runs itself, with `drain()`."""
    return Worker(db, settings, name="test")


@pytest.fixture
def worker_thread(db: Database, settings: Settings) -> Iterator[Worker]:
    """A worker running in background threads, as `modelyard serve` runs one, so that waits end by themselves."""
    running = Worker(db, settings, name="background")
    running.start()
    yield running
    running.stop()


def drain(worker: Worker) -> None:
    while worker.run_once():
        pass


LLAMA_TENSORS = tiny_llama_tensors()


def llama_files() -> dict[str, bytes]:
    return {
        "config.json": config_bytes("llama-3.2-1b"),
        "model.safetensors": safetensors_bytes(LLAMA_TENSORS),
        "tokenizer.json": b'{"version": "1.0"}',
    }


def upload(sdk: Client, tmp_path: Path, fileset: str, files: dict[str, bytes], ws: str = "default") -> str:
    """A model fileset holding `files`; answers its 'ws/name'."""
    root = tmp_path / "upload" / ws / fileset
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    sdk.filesets.create(ws, fileset, purpose="model")
    sdk.filesets.upload_dir(root, f"{ws}/{fileset}")
    return f"{ws}/{fileset}"


def llama_version(path: str, **extra: Any) -> dict[str, Any]:
    return {"base_model_type": "LLAMA_3_2_1B", "model_path": path, **extra}


# --- a model and its first version --------------------------------------------------------------------------------


def test_create_with_a_version_and_wait_until_ready(sdk: Client, worker_thread: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "llama-files", llama_files())
    created = sdk.models.create(
        "default",
        "llama",
        description="Llama 3.2 1B",
        model_type="CHAT_COMPLETION",
        display_name="Llama 3.2 1B",
        labels={"team": "nlp"},
        base_model_metadata={"license": "llama3.2"},
        model_card={"summary": "small"},
        version=llama_version(path, description="first"),
    )
    assert created["name"] == "llama"
    assert created["workspace"] == "default"
    assert created["model_type"] == "CHAT_COMPLETION"
    assert created["labels"] == {"team": "nlp"}
    assert created["base_model_metadata"] == {"license": "llama3.2"}
    assert created["current_version"] is None
    assert created.etag
    new = created["new_version"]
    assert (new["name"], new["status"], new["model"], new["description"]) == (
        "v1",
        "CREATING",
        "default/llama",
        "first",
    )

    seen: list[str] = []
    ready = sdk.models.versions.wait(
        "default", "llama", "v1", timeout=30, poll=0.05, progress=lambda v: seen.append(v["status"])
    )
    assert ready["status"] == "READY", ready["status_message"]
    assert ready.etag
    assert seen[-1] == "READY"
    assert ready["is_current"] is True
    assert ready["file_count"] == 3
    assert ready["digest"] == sdk.filesets.get("default", "llama-files")["digest"]
    assert ready["config"] == {
        "llm_model_config": {"base_model_type": "LLAMA_3_2_1B", "model_path": path, "local_model_path": ""}
    }

    model = sdk.models.get("default/llama")
    assert model == sdk.models.get("default", "llama")
    assert model["current_version"] == {"id": new["id"], "name": "v1", "status": "READY", "digest": ready["digest"]}
    assert model["current_version_id"] == new["id"]
    spec = model["spec"]
    assert spec["architecture"] == "LlamaForCausalLM"
    assert (spec["num_layers"], spec["hidden_size"], spec["num_attention_heads"], spec["num_kv_heads"]) == (
        16,
        2048,
        32,
        8,
    )
    assert spec["num_parameters"] == numel(LLAMA_TENSORS)
    assert spec["dtype"] == "bfloat16"
    assert spec == ready["spec"]


def test_the_version_argument_takes_the_apis_shape_too(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", {"config.json": config_bytes("qwen2.5-0.5b")})
    api_shape = {"name": "first", "config": {"llm_model_config": {"base_model_type": "qwen_2_72b", "model_path": path}}}
    created = sdk.models.create("default", "qwen", version=api_shape)
    assert created["new_version"]["name"] == "first"
    assert created["new_version"]["config"]["llm_model_config"]["base_model_type"] == "QWEN_2_72B"
    with pytest.raises(ValueError, match="base_model_type"):
        sdk.models.create("default", "x", version={"model_path": path})
    with pytest.raises(ValueError, match="modelpath"):
        sdk.models.create("default", "x", version={"base_model_type": "X", "modelpath": path})
    with pytest.raises(NotFoundError):
        sdk.models.get("default", "x")  # nothing was sent


def test_create_without_a_version(sdk: Client) -> None:
    created = sdk.models.create("default", "bare")
    assert created["new_version"] is None
    assert (created["model_type"], created["visibility"], created["labels"]) == ("GENERIC", "PRIVATE", {})
    assert created["spec"] is None
    assert list(sdk.models.versions.list("default/bare")) == []


def test_idempotent_create(sdk: Client, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    first = sdk.models.create("default", "m", version=llama_version(path), idempotency_key="model-key")
    again = sdk.models.create("default", "m", version=llama_version(path), idempotency_key="model-key")
    assert again == first
    assert [v["name"] for v in sdk.models.versions.list("default", "m")] == ["v1"]
    with pytest.raises(ConflictError) as duplicate:
        sdk.models.create("default", "m")
    assert duplicate.value.error_code == "MODEL_ALREADY_EXISTS"
    version = sdk.models.versions.create("default/m", base_model_type="X", model_path=path, idempotency_key="v-key")
    assert (
        sdk.models.versions.create("default/m", base_model_type="X", model_path=path, idempotency_key="v-key")
        == version
    )
    assert sdk.models.versions.list("default/m").total_results == 2


# --- waiting ------------------------------------------------------------------------------------------------------


def test_wait_returns_a_failed_version(sdk: Client, worker_thread: Worker) -> None:
    created = sdk.models.create("default", "m", version=llama_version("default/no-such-fileset"))
    failed = sdk.models.versions.wait(
        created["new_version"]["model"], created["new_version"]["name"], poll=0.05, timeout=30
    )
    assert failed["status"] == "FAILED"
    assert "default/no-such-fileset" in failed["status_message"]
    assert "must exist" in failed["status_message"]
    assert failed["digest"] is None
    assert sdk.models.get("default", "m")["current_version"] is None


def test_wait_times_out_with_the_last_answer(sdk: Client) -> None:
    sdk.models.create("default", "m", version=llama_version("default/files"))  # no worker runs: stays CREATING
    polls: list[dict[str, Any]] = []
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as timed_out:
        sdk.models.versions.wait("default/m", "v1", timeout=0.4, poll=0.1, progress=polls.append)
    assert 0.4 <= time.monotonic() - started < 5
    err = timed_out.value
    assert isinstance(err, TimeoutError)
    assert isinstance(err, ModelyardError)
    assert err.error_code == "WAIT_TIMEOUT"
    assert err.status_code is None
    assert "'v1' of model 'default/m' is still CREATING" in err.error_msg
    assert "worker" in err.solution_msg
    assert err.version is not None
    assert err.version["status"] == "CREATING"
    assert len(polls) >= 3
    with pytest.raises(WaitTimeoutError):
        sdk.models.versions.wait("default", "m", "v1", timeout=0)  # asks once


def test_wait_for_a_version_that_is_already_final(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    sdk.models.create("default", "m", version=llama_version(path))
    drain(worker)
    assert sdk.models.versions.wait("default", "m", "v1", timeout=0)["status"] == "READY"
    with pytest.raises(NotFoundError) as missing:
        sdk.models.versions.wait("default", "m", "v9", timeout=1)
    assert missing.value.error_code == "VERSION_NOT_FOUND"


def test_wait_over_real_http(live_server: str, admin_token: str, worker_thread: Worker, tmp_path: Path) -> None:
    with Client(base_url=live_server, token=admin_token) as remote:
        path = upload(remote, tmp_path, "files", llama_files())
        remote.models.create("default", "m")
        created = remote.models.versions.create("default", "m", base_model_type="llama_3_2_1b", model_path=path)
        assert created["status"] == "CREATING"
        assert remote.models.versions.wait("default/m", created["name"], poll=0.05, timeout=30)["status"] == "READY"
        assert remote.models.get("default/m")["spec"]["hidden_size"] == 2048


# --- the current version ------------------------------------------------------------------------------------------


def test_set_current(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    sdk.models.create("default", "m", version=llama_version(path))
    sdk.models.versions.create("default", "m", base_model_type="LLAMA_3_2_1B", model_path=path, name="v2")
    sdk.models.versions.create("default/m", base_model_type="LLAMA_3_2_1B", model_path="default/gone", name="broken")
    drain(worker)
    pending = sdk.models.versions.create("default/m", base_model_type="LLAMA_3_2_1B", model_path=path, name="pending")
    assert sdk.models.get("default/m")["current_version"]["name"] == "v1"

    model = sdk.models.set_current("default", "m", "v2")  # by name
    assert model["current_version"]["name"] == "v2"
    assert model.etag
    assert sdk.models.versions.get("default/m", "v2")["is_current"] is True
    v1 = sdk.models.versions.get("default", "m", "v1")
    assert sdk.models.set_current("default/m", v1["id"])["current_version"]["name"] == "v1"  # by id

    for name, status in (("broken", "FAILED"), ("pending", "CREATING")):
        with pytest.raises(ConflictError) as refused:
            sdk.models.set_current("default/m", name)
        assert refused.value.error_code == "VERSION_NOT_READY"
        assert refused.value.detail == {"version": name, "status": status}
        assert "If the version failed, it cannot be updated to the current version" in refused.value.error_msg
    with pytest.raises(ConflictError) as by_id:
        sdk.models.set_current("default/m", pending["id"])
    assert by_id.value.error_code == "VERSION_NOT_READY"
    assert sdk.models.get("default/m")["current_version"]["name"] == "v1"  # unchanged

    sdk.models.create("default", "other", version=llama_version(path))
    drain(worker)
    other = sdk.models.versions.get("default/other", "v1")
    for foreign in (other["id"], "no-such-version"):
        with pytest.raises(ConflictError) as not_ours:
            sdk.models.set_current("default/m", foreign)
        assert not_ours.value.error_code == "VERSION_NOT_OF_MODEL"
    with pytest.raises(NotFoundError):
        sdk.models.set_current("default/absent", "v1")

    stale = sdk.models.get("default/m").etag
    sdk.models.update("default/m", description="changed")
    with pytest.raises(PreconditionFailedError):
        sdk.models.set_current("default/m", "v2", if_match=stale)
    assert sdk.models.get("default/m")["current_version"]["name"] == "v1"


def test_replace_is_huaweis_update(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", {"config.json": config_bytes("qwen2.5-0.5b")})
    sdk.models.create("default", "qwen-ft", version={"base_model_type": "QWEN_2_72B", "model_path": path})
    drain(worker)
    replaced = sdk.models.replace(
        "default/qwen-ft", version={"base_model_type": "QWEN_2_72B", "model_path": path, "name": "v2"}
    )
    assert replaced["new_version"]["name"] == "v2"
    assert replaced["new_version"]["status"] == "CREATING"
    assert replaced["current_version"]["name"] == "v1"
    drain(worker)
    v2 = sdk.models.versions.get("default/qwen-ft", "v2")
    renamed = sdk.models.replace(
        "default", "qwen-ft", name="qwen-renamed", description="now v2", current_version_id=v2["id"]
    )
    assert (renamed["name"], renamed["description"]) == ("qwen-renamed", "now v2")
    assert renamed["current_version"]["name"] == "v2"
    assert renamed["new_version"] is None
    with pytest.raises(NotFoundError) as gone:
        sdk.models.get("default/qwen-ft")
    assert gone.value.error_code == "MODEL_NOT_FOUND"


# --- metadata, lists, deletes --------------------------------------------------------------------------------------


def test_update_with_if_match(sdk: Client) -> None:
    sdk.models.create("default", "m", labels={"team": "nlp"})
    current = sdk.models.get("default", "m")
    updated = sdk.models.update(
        "default/m",
        display_name="M",
        visibility="PUBLIC",
        model_type="EMBEDDING",
        labels={"team": "search", "tier": "1"},
        training_data_card={"datasets": ["squad"]},
        if_match=current.etag,
    )
    assert (updated["display_name"], updated["visibility"], updated["model_type"]) == ("M", "PUBLIC", "EMBEDDING")
    assert updated["labels"] == {"team": "search", "tier": "1"}
    assert updated["training_data_card"] == {"datasets": ["squad"]}
    assert updated["description"] == ""  # not named, not changed
    assert updated.etag != current.etag
    with pytest.raises(PreconditionFailedError):
        sdk.models.update("default", "m", description="lost", if_match=current.etag)
    with pytest.raises(ValidationError) as bad:
        sdk.models.update("default", "m", visibility="SECRET")
    assert bad.value.detail[0]["loc"] == ["body", "visibility"]


def test_list_filters(sdk: Client) -> None:
    sdk.models.create("default", "llama-chat", model_type="CHAT_COMPLETION", labels={"team": "nlp", "tier": "1"})
    sdk.models.create("default", "llama-embed", model_type="EMBEDDING", labels={"team": "search"})
    sdk.models.create("default", "qwen", visibility="PUBLIC", labels={"team": "nlp", "tier": "2"})

    def names(**filters: Any) -> list[str]:
        return [m["name"] for m in sdk.models.list("default", sort="name", **filters)]

    assert names() == ["llama-chat", "llama-embed", "qwen"]
    assert names(name_prefix="llama") == ["llama-chat", "llama-embed"]
    assert names(model_type="EMBEDDING") == ["llama-embed"]
    assert names(visibility="PUBLIC") == ["qwen"]
    assert names(label={"team": "nlp"}) == ["llama-chat", "qwen"]
    assert names(label={"team": "nlp", "tier": "1"}) == ["llama-chat"]
    assert names(label=["team:nlp", "tier:2"]) == ["qwen"]
    assert names(label="team:search") == ["llama-embed"]
    assert names(label={}) == ["llama-chat", "llama-embed", "qwen"]
    assert names(label="team:nobody") == []
    assert [m["name"] for m in sdk.models.list("default", sort="-name", page_size=1)] == [
        "qwen",
        "llama-embed",
        "llama-chat",
    ]
    assert sdk.models.list("default", label="team:nlp").total_results == 2
    with pytest.raises(ValidationError):
        list(sdk.models.list("default", label="team"))
    with pytest.raises(BadRequestError) as unknown:
        list(sdk.models.list("default", colour="red"))
    assert "model_type" in unknown.value.detail["valid"]


def test_versions_list_get_update_delete(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    sdk.models.create("default", "m", version=llama_version(path))
    for name, where in (("exp-1", path), ("exp-2", "default/missing")):
        sdk.models.versions.create("default/m", base_model_type="LLAMA_3_2_1B", model_path=where, name=name)
    drain(worker)

    versions = sdk.models.versions
    assert [v["name"] for v in versions.list("default/m", sort="name")] == ["exp-1", "exp-2", "v1"]
    assert [v["name"] for v in versions.list("default", "m", status="FAILED")] == ["exp-2"]
    assert [v["name"] for v in versions.list("default/m", status="READY", name_prefix="exp")] == ["exp-1"]
    assert [v["name"] for v in versions.list("default/m", sort="-name", page_size=1)] == ["v1", "exp-2", "exp-1"]

    got = versions.get("default/m", "exp-1")
    assert got["is_current"] is False
    updated = versions.update("default/m", "exp-1", description="an experiment", if_match=got.etag)
    assert updated["description"] == "an experiment"
    with pytest.raises(PreconditionFailedError):
        versions.update("default", "m", "exp-1", description="lost", if_match=got.etag)

    with pytest.raises(ConflictError) as in_use:
        versions.delete("default/m", "v1")
    assert in_use.value.error_code == "VERSION_IN_USE"
    with pytest.raises(PreconditionFailedError):
        versions.delete("default/m", "exp-1", if_match=got.etag)
    versions.delete("default/m", "exp-1", if_match=versions.get("default/m", "exp-1").etag)
    versions.delete("default", "m", "exp-2")
    assert [v["name"] for v in versions.list("default/m")] == ["v1"]
    with pytest.raises(NotFoundError) as missing:
        versions.get("default/m", "exp-1")
    assert missing.value.error_code == "VERSION_NOT_FOUND"


def test_bad_versions_are_the_servers_errors(sdk: Client, tmp_path: Path) -> None:
    sdk.models.create("default", "m")
    versions = sdk.models.versions
    with pytest.raises(ValidationError) as both:
        versions.create("default/m", base_model_type="X", model_path="default/a", local_model_path="/tmp")
    assert both.value.detail[0]["loc"][:3] == ["body", "config", "llm_model_config"]
    with pytest.raises(ValidationError):
        versions.create("default/m", base_model_type="X")  # no path at all
    with pytest.raises(ValidationError) as scheme:
        versions.create("default/m", base_model_type="X", model_path="obs://bucket/path/")
    assert "obs://" in scheme.value.error_msg
    with pytest.raises(ValidationError):
        versions.create("default/m", base_model_type="7B_MODEL", model_path="default/a")
    with pytest.raises(BadRequestError) as outside:
        versions.create("default/m", base_model_type="X", local_model_path="/etc")
    assert outside.value.error_code == "LOCAL_PATH_NOT_ALLOWED"
    assert "MODELYARD_ALLOWED_LOCAL_ROOTS" in outside.value.error_msg
    versions.create("default/m", base_model_type="X", model_path="default/a", name="same")
    with pytest.raises(ConflictError) as duplicate:
        versions.create("default/m", base_model_type="X", model_path="default/a", name="same")
    assert duplicate.value.error_code == "VERSION_ALREADY_EXISTS"


def test_local_model_path(sdk: Client, worker: Worker, settings: Settings) -> None:
    model_dir = settings.allowed_local_roots[0] / "llama"
    model_dir.mkdir()
    for name, data in llama_files().items():
        (model_dir / name).write_bytes(data)
    sdk.models.create("default", "m")
    created = sdk.models.versions.create("default/m", base_model_type="LLAMA_3_2_1B", local_model_path=str(model_dir))
    drain(worker)
    ready = sdk.models.versions.get("default/m", created["name"])
    assert ready["status"] == "READY", ready["status_message"]
    assert ready["config"]["llm_model_config"]["local_model_path"] == str(model_dir)


def test_manifest(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    files = {**llama_files(), "generation_config.json": b"{}", "extra/notes.txt": b"hello"}
    path = upload(sdk, tmp_path, "files", files)
    sdk.models.create("default", "m", version=llama_version(path))
    drain(worker)
    manifest = list(sdk.models.versions.files("default/m", "v1", page_size=2))
    assert manifest == [
        {"path": p, "size": len(files[p]), "sha256": hashlib.sha256(files[p]).hexdigest()} for p in sorted(files)
    ]
    assert [f["path"] for f in sdk.models.versions.files("default", "m", "v1", sort="-path")] == sorted(files)[::-1]
    pager = sdk.models.versions.files("default/m", "v1", page_size=1)
    assert pager.total_results == len(files)
    assert sum(1 for _ in pager.pages()) == len(files)


def test_delete_model(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    sdk.models.create("default", "m", version=llama_version(path))
    drain(worker)
    stale = sdk.models.get("default/m").etag
    sdk.models.update("default/m", description="changed")
    with pytest.raises(PreconditionFailedError):
        sdk.models.delete("default/m", if_match=stale)
    sdk.models.delete("default", "m", cascade=True, if_match=sdk.models.get("default/m").etag)
    with pytest.raises(NotFoundError):
        sdk.models.get("default/m")
    with pytest.raises(NotFoundError):
        sdk.models.versions.get("default/m", "v1")
    sdk.models.create("default", "plain")
    sdk.models.delete("default/plain")
    assert list(sdk.models.list("default")) == []


def test_base_model_types(sdk: Client, worker: Worker, tmp_path: Path) -> None:
    assert sdk.base_model_types() == []
    path = upload(sdk, tmp_path, "q", {"config.json": config_bytes("qwen2.5-0.5b")})
    sdk.models.create("default", "a", version={"base_model_type": "qwen_2_72b", "model_path": path})
    sdk.models.create("default", "b", version={"base_model_type": "GLM_4_9B", "model_path": "default/missing"})
    drain(worker)
    assert sdk.base_model_types() == [
        {
            "base_model_type": "GLM_4_9B",
            "versions": 1,
            "ready_versions": 0,
            "architectures": [],
            "families": [],
            "max_position_embeddings": None,
        },
        {
            "base_model_type": "QWEN_2_72B",
            "versions": 1,
            "ready_versions": 1,
            "architectures": ["Qwen2ForCausalLM"],
            "families": ["qwen2"],
            "max_position_embeddings": 32768,
        },
    ]


def test_a_viewer_reads_and_may_not_write(app: FastAPI, sdk: Client, worker: Worker, tmp_path: Path) -> None:
    path = upload(sdk, tmp_path, "files", llama_files())
    sdk.models.create("default", "m", version=llama_version(path))
    drain(worker)
    sdk.users.create("vic")
    secret = sdk.tokens.create("vic-token", user="vic")["token"]
    sdk.members.add("default", "vic", "viewer")
    with TestClient(app, raise_server_exceptions=False) as http, Client(token=secret, http_client=http) as vic:
        assert vic.models.get("default/m")["current_version"]["name"] == "v1"
        assert [f["path"] for f in vic.models.versions.files("default/m", "v1")] == sorted(llama_files())
        assert [t["base_model_type"] for t in vic.base_model_types()] == ["LLAMA_3_2_1B"]
        with pytest.raises(ModelyardError) as refused:
            vic.models.versions.create("default/m", base_model_type="X", model_path=path)
        assert refused.value.status_code == 403
        assert refused.value.error_code == "INSUFFICIENT_ROLE"


@pytest.mark.parametrize("ref", ["default", "a/b/c", "/m", "default/", "", "/"])
def test_model_refs_are_parsed_strictly(sdk: Client, ref: str) -> None:
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.models.get(ref)
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.models.versions.get(ref, "v1")
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.models.versions.wait(ref, "v1", timeout=0)


def test_a_missing_version_or_a_bad_poll_is_refused(sdk: Client) -> None:
    with pytest.raises(ValueError, match="then the version"):
        sdk.models.versions.get("default", "m")  # no version named
    with pytest.raises(ValueError, match="poll"):
        sdk.models.versions.wait("default/m", "v1", poll=0)


def test_a_ref_and_a_name_together_are_refused(sdk: Client) -> None:
    with pytest.raises(ValueError, match="either"):
        sdk.models.get("default/m", "m")
    with pytest.raises(ValueError, match="either"):
        sdk.models.versions.get("default/m", "m", "v1")


# --- docs ---------------------------------------------------------------------------------------------------------


def test_sdk_guide_examples_run_with_a_worker(
    app: FastAPI,
    database_url: str,
    live_server: str,
    admin_token: str,
    worker_thread: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every example of docs/sdk.md, in order, in one namespace, against a fresh server with a worker: the
    ```python blocks (which tests/test_client.py also runs, without a worker) and the ```python worker blocks of
    the Models section, whose versions only become READY or FAILED when a worker checks them."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the docs' examples run once, on SQLite: they test the docs, not the database")
    text = (DOCS / "sdk.md").read_text()
    blocks = re.findall(r"^```python( worker)?\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert sum(1 for worker, _body in blocks if worker) >= 3
    monkeypatch.setenv("MODELYARD_URL", live_server)
    monkeypatch.setenv("MODELYARD_TOKEN", admin_token)
    namespace: dict[str, object] = {"__name__": "sdk_guide"}
    for _worker, block in blocks:
        exec(compile(block, "docs/sdk.md", "exec"), namespace)  # our own docs
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test(app, admin_token)
