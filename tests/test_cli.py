"""The `modelyard` resource commands, run against the real app served on loopback (they go through the SDK)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job.worker import Worker
from tests.fixtures.models import config_bytes, numel, safetensors_bytes, tiny_llama_tensors

DOCS = Path(__file__).resolve().parents[1] / "docs"
BIN = Path(sys.executable).parent

Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "no-home"))


@pytest.fixture
def run(live_server: str, admin_token: str) -> Run:
    """run("workspaces", "list") as the admin, with the global --url/--token; token= to act as someone else."""
    runner = CliRunner()

    def invoke(*args: str, token: str = admin_token, input: str | None = None) -> Result:
        return runner.invoke(app, ["--url", live_server, "--token", token, *args], input=input)

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def failed(result: Result, error_code: str) -> str:
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{error_code}: "), result.stderr
    return result.stderr


def table_rows(result: Result) -> list[list[str]]:
    return [line.split() for line in ok(result).stdout.splitlines()[1:] if line.strip()]


# --- workspaces -------------------------------------------------------------------------------------------------


def test_workspaces(run: Run) -> None:
    created = as_json(run("workspaces", "create", "research", "--description", "R&D", "--json"))
    assert created["name"] == "research"
    assert created["description"] == "R&D"
    assert created["role"] == "admin"

    table = ok(run("workspaces", "create", "vision"))
    assert re.search(r"^name\s+vision\s*$", table.stdout, re.MULTILINE)

    listed = as_json(run("workspaces", "list", "--json", "--sort", "name"))
    assert [w["name"] for w in listed] == ["default", "research", "vision"]
    rows = table_rows(run("workspaces", "list", "--sort", "-name"))
    assert [r[0] for r in rows] == ["vision", "research", "default"]
    assert ok(run("workspaces", "list")).stdout.splitlines()[0].split()[:2] == ["NAME", "DESCRIPTION"]
    assert [w["name"] for w in as_json(run("workspaces", "list", "--name-prefix", "res", "--json"))] == ["research"]
    limited = as_json(run("workspaces", "list", "--json", "--limit", "2", "--sort", "name"))
    assert [w["name"] for w in limited] == ["default", "research"]

    shown = as_json(run("workspaces", "show", "research", "--json"))
    assert shown["id"] == created["id"]
    assert "R&D" in ok(run("workspaces", "show", "research")).stdout

    updated = as_json(run("workspaces", "update", "research", "--description", "new", "--json"))
    assert updated["description"] == "new"

    declined = run("workspaces", "delete", "vision", input="n\n")
    assert declined.exit_code == 1
    assert as_json(run("workspaces", "show", "vision", "--json"))["name"] == "vision"
    assert ok(run("workspaces", "delete", "vision", input="y\n"))
    deleted = ok(run("workspaces", "delete", "research", "--cascade", "--yes"))
    assert deleted.stdout == ""
    assert "Deleted workspace 'research'" in deleted.stderr
    failed(run("workspaces", "show", "research"), "WORKSPACE_NOT_FOUND")


def test_list_walks_several_pages(run: Run) -> None:
    for i in range(12):
        ok(run("workspaces", "create", f"ws-{i:02d}", "--json"))
    listed = as_json(run("workspaces", "list", "--json", "--page-size", "5", "--sort", "name"))
    assert [w["name"] for w in listed] == ["default", *(f"ws-{i:02d}" for i in range(12))]
    assert len(table_rows(run("workspaces", "list", "--page-size", "5"))) == 13
    assert len(as_json(run("workspaces", "list", "--json", "--page-size", "5", "--limit", "7"))) == 7


def test_idempotency_key(run: Run) -> None:
    first = as_json(run("workspaces", "create", "once", "--idempotency-key", "k1", "--json"))
    again = as_json(run("workspaces", "create", "once", "--idempotency-key", "k1", "--json"))
    assert again == first
    failed(run("workspaces", "create", "once"), "WORKSPACE_ALREADY_EXISTS")


# --- members, users, tokens, events, me -------------------------------------------------------------------------


def test_members(run: Run) -> None:
    ok(run("workspaces", "create", "team"))
    ok(run("users", "create", "alice", "--display-name", "Alice Liddell"))
    added = as_json(run("members", "add", "team", "alice", "--role", "viewer", "--json"))
    assert added == {**added, "user": "alice", "role": "viewer", "display_name": "Alice Liddell"}
    rows = table_rows(run("members", "list", "team"))
    assert {r[0]: r[-3] for r in rows} == {"admin": "admin", "alice": "viewer"}  # the time is two words
    assert [m["user"] for m in as_json(run("members", "list", "team", "--role", "viewer", "--json"))] == ["alice"]
    assert as_json(run("members", "set-role", "team", "alice", "--role", "editor", "--json"))["role"] == "editor"
    assert "editor" in ok(run("members", "set-role", "team", "alice", "--role", "editor")).stdout
    removed = ok(run("members", "remove", "team", "alice"))
    assert "Removed 'alice'" in removed.stderr
    assert [m["user"] for m in as_json(run("members", "list", "team", "--json"))] == ["admin"]
    stderr = failed(run("members", "remove", "team", "admin"), "LAST_WORKSPACE_ADMIN")
    assert "Make another member admin first" in stderr


def test_users(run: Run) -> None:
    created = as_json(run("users", "create", "bob", "--display-name", "Bob", "--json"))
    assert created["name"] == "bob"
    assert created["is_admin"] is False
    assert as_json(run("users", "create", "root2", "--admin", "--json"))["is_admin"] is True
    assert [u["name"] for u in as_json(run("users", "list", "--json", "--sort", "name"))] == ["admin", "bob", "root2"]
    assert [u["name"] for u in as_json(run("users", "list", "--no-admin", "--json"))] == ["bob"]
    assert [u["name"] for u in as_json(run("users", "list", "--name-prefix", "ro", "--json"))] == ["root2"]
    rows = table_rows(run("users", "list", "--admin", "--sort", "name"))
    assert [r[0] for r in rows] == ["admin", "root2"]
    assert as_json(run("users", "show", "bob", "--json"))["display_name"] == "Bob"
    assert re.search(r"^server admin\s+no\s*$", ok(run("users", "show", "bob")).stdout, re.MULTILINE)
    assert as_json(run("users", "update", "bob", "--display-name", "Robert", "--json"))["display_name"] == "Robert"
    assert as_json(run("users", "update", "bob", "--admin", "--json"))["is_admin"] is True
    assert ok(run("users", "delete", "bob", "--yes"))
    failed(run("users", "show", "bob"), "USER_NOT_FOUND")


def test_tokens(run: Run) -> None:
    ok(run("users", "create", "carol"))
    result = ok(run("tokens", "create", "laptop", "--user", "carol", "--expires-at", "2099-01-31T12:00:00Z"))
    secret = result.stdout.strip()
    assert re.fullmatch(r"myd_\S+", secret), "only the secret goes to stdout"
    assert "shown only now" in result.stderr
    assert "2099-01-31" in result.stderr

    me = as_json(run("me", "--json", token=secret))
    assert me["name"] == "carol"
    mine = as_json(run("tokens", "list", "--json", token=secret))
    assert [t["name"] for t in mine] == ["laptop"]
    assert mine[0]["expires_at"].startswith("2099-01-31T12:00:00")

    created = as_json(run("tokens", "create", "ci", "--user", "carol", "--expires-at", "2099-02-01", "--json"))
    assert created["token"].startswith("myd_")
    assert created["expires_at"].startswith("2099-02-01T00:00:00")  # no zone given: UTC
    assert {t["name"] for t in as_json(run("tokens", "list", "--user", "carol", "--json"))} == {"laptop", "ci"}
    rows = table_rows(run("tokens", "list", "--user", "carol"))
    assert {r[1] for r in rows} == {"laptop", "ci"}

    revoked = ok(run("tokens", "revoke", mine[0]["id"]))
    assert mine[0]["id"] in revoked.stderr
    stderr = failed(run("me", token=secret), "INVALID_TOKEN")
    assert "Bearer" in stderr
    failed(run("tokens", "revoke", mine[0]["id"]), "TOKEN_NOT_FOUND")


def test_events(run: Run) -> None:
    ok(run("workspaces", "create", "audited"))
    ok(run("users", "create", "dave"))
    ok(run("members", "add", "audited", "dave", "--role", "viewer"))
    events = as_json(run("events", "list", "audited", "--json"))
    assert [e["action"] for e in events] == ["member.added", "workspace.created"]
    only = as_json(run("events", "list", "audited", "--action", "member.added", "--json"))
    assert [e["resource"]["name"] for e in only] == ["dave"]
    kinds = as_json(run("events", "list", "audited", "--resource-kind", "workspace", "--json"))
    assert [e["action"] for e in kinds] == ["workspace.created"]
    assert as_json(run("events", "list", "audited", "--since", "2999-01-01T00:00:00Z", "--json")) == []
    assert len(as_json(run("events", "list", "audited", "--since", "2000-01-01", "--json"))) == 2
    rows = table_rows(run("events", "list", "audited", "--sort", "at"))
    assert [r[4] for r in rows] == ["workspace.created", "member.added"]  # the time is two words
    assert rows[1][5] == "member/dave"


def test_me(run: Run) -> None:
    me = as_json(run("me", "--json"))
    assert me["name"] == "admin"
    assert me["memberships"] == [{"workspace": "default", "role": "admin"}]
    assert re.search(r"^workspaces\s+default \(admin\)\s*$", ok(run("me")).stdout, re.MULTILINE)


# --- filesets ---------------------------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


MODEL_FILES = {
    "config.json": b'{"hidden_size": 64}',
    "weights/model.safetensors": os.urandom(1024 * 1024 + 7),
    "weights/extra/index.json": b"{}",
    "empty.txt": b"",
}


def test_filesets(run: Run) -> None:
    created = as_json(run("filesets", "create", "default", "llama", "--purpose", "model", "--json"))
    assert created == {**created, "name": "llama", "workspace": "default", "purpose": "model", "file_count": 0}
    assert as_json(run("filesets", "update", "default/llama", "--description", "w", "--json"))["description"] == "w"
    table = ok(run("filesets", "create", "default", "squad", "--purpose", "dataset", "--storage", "local"))
    assert re.search(r"^purpose\s+dataset\s*$", table.stdout, re.MULTILINE)
    assert re.search(r"^size\s+0 bytes\s*$", table.stdout, re.MULTILINE)
    failed(run("filesets", "create", "default", "llama"), "FILESET_ALREADY_EXISTS")
    failed(run("filesets", "create", "default", "x", "--storage", "s3"), "STORAGE_NOT_CONFIGURED")
    failed(run("filesets", "create", "default", "x", "--purpose", "images"), "VALIDATION_ERROR")

    assert [f["name"] for f in as_json(run("filesets", "list", "default", "--sort", "name", "--json"))] == [
        "llama",
        "squad",
    ]
    assert [f["name"] for f in as_json(run("filesets", "list", "default", "--purpose", "dataset", "--json"))] == [
        "squad"
    ]
    assert len(as_json(run("filesets", "list", "default", "--storage", "local", "--json"))) == 2
    rows = table_rows(run("filesets", "list", "default", "--name-prefix", "lla"))
    assert rows[0][:5] == ["llama", "model", "local", "0", "0"]  # size "0 bytes" is two words

    assert as_json(run("filesets", "show", "default/llama", "--json"))["id"] == created["id"]
    assert re.search(r"^workspace\s+default\s*$", ok(run("filesets", "show", "default/llama")).stdout, re.MULTILINE)
    updated = as_json(
        run("filesets", "update", "default/squad", "--description", "QA", "--purpose", "generic", "--json")
    )
    assert (updated["description"], updated["purpose"]) == ("QA", "generic")

    declined = run("filesets", "delete", "default/squad", input="n\n")
    assert declined.exit_code == 1
    deleted = ok(run("filesets", "delete", "default/squad", "--yes", "--force"))
    assert "Deleted fileset 'default/squad'" in deleted.stderr
    failed(run("filesets", "show", "default/squad"), "FILESET_NOT_FOUND")
    failed(run("filesets", "show", "nowhere/squad"), "WORKSPACE_NOT_FOUND")
    for bad in ("default", "default/llama/x", "/llama"):
        refused = run("filesets", "show", bad)
        assert refused.exit_code == 2
        assert "workspace/name" in refused.stderr


def test_filesets_upload_and_download(run: Run, tmp_path: Path) -> None:
    source = _tree(tmp_path / "model", MODEL_FILES)
    ok(run("filesets", "create", "default", "llama"))
    uploaded = ok(run("filesets", "upload", str(source), "default/llama"))
    assert uploaded.stdout == ""
    assert re.match(r"Uploaded 4 files \(1\.0 MB\) to default/llama in [\d.]+ s \([\d.]+ MB/s\)\.$", uploaded.stderr)

    again = as_json(run("filesets", "upload", str(source), "default/llama", "--json"))
    assert again == {**again, "fileset": "default/llama", "uploaded": 0, "skipped": 4, "bytes": 0}
    assert set(again) == {"fileset", "uploaded", "skipped", "bytes", "seconds", "mb_per_second"}
    (source / "config.json").write_bytes(b'{"hidden_size": 32}')
    changed = ok(run("filesets", "upload", str(source), "default/llama"))
    assert re.match(r"Uploaded 1 file \(19 bytes\) .*; skipped 3 unchanged files\.$", changed.stderr)

    config = str(source / "config.json")
    single = as_json(run("filesets", "upload", config, "default/llama", "--prefix", "v2", "--json"))
    assert (single["uploaded"], single["skipped"], single["bytes"]) == (1, 0, 19)
    assert as_json(run("filesets", "upload", config, "default/llama", "--prefix", "v2/", "--json"))["skipped"] == 1

    files = as_json(run("filesets", "files", "default/llama", "--json"))
    assert [f["path"] for f in files] == ["config.json", "empty.txt", "v2/config.json", "weights/extra/index.json",
                                          "weights/model.safetensors"]  # fmt: skip
    rows = table_rows(run("filesets", "files", "default/llama", "--path", "weights/"))
    assert [r[0] for r in rows] == ["weights/extra/index.json", "weights/model.safetensors"]
    assert rows[1][1:3] == ["1.0", "MB"]
    assert rows[1][3] == files[4]["sha256"][:12]
    assert len(as_json(run("filesets", "files", "default/llama", "--limit", "2", "--page-size", "1", "--json"))) == 2

    target = tmp_path / "copy"
    downloaded = as_json(run("filesets", "download", "default/llama", str(target), "--json"))
    assert downloaded == {
        **downloaded,
        "fileset": "default/llama",
        "directory": str(target),
        "downloaded": 5,
        "skipped": 0,
        "bytes": sum(len(d) for d in MODEL_FILES.values()) + 19,
    }
    assert _read_tree(target) == {**_read_tree(source), "v2/config.json": b'{"hidden_size": 32}'}
    again_down = ok(run("filesets", "download", "default/llama", str(target)))
    assert re.match(r"Downloaded 0 files from default/llama to .* in [\d.]+ s; skipped 5 unchanged files\.$",
                    again_down.stderr)  # fmt: skip
    partial = as_json(run("filesets", "download", "default/llama", str(tmp_path / "w"), "--path", "weights/", "--json"))
    assert partial["downloaded"] == 2
    assert sorted(_read_tree(tmp_path / "w")) == ["weights/extra/index.json", "weights/model.safetensors"]

    removed = ok(run("filesets", "rm", "default/llama", "v2/config.json"))
    assert "Deleted 'v2/config.json' from fileset 'default/llama'" in removed.stderr
    failed(run("filesets", "rm", "default/llama", "v2/config.json"), "FILE_NOT_FOUND")
    failed(run("filesets", "upload", str(source), "default/absent"), "FILESET_NOT_FOUND")
    failed(run("filesets", "upload", config, "default/llama", "--prefix", "../x"), "INVALID_PATH")
    failed(run("filesets", "download", "default/absent", str(tmp_path / "x")), "FILESET_NOT_FOUND")
    assert run("filesets", "upload", str(tmp_path / "absent"), "default/llama").exit_code == 2
    (tmp_path / "a-file").write_bytes(b"")
    local = run("filesets", "download", "default/llama", str(tmp_path / "a-file"))
    assert local.exit_code == 1
    assert local.stderr.startswith("LOCAL_ERROR: ")


def test_filesets_progress_bar_on_a_terminal(live_server: str, admin_token: str, tmp_path: Path) -> None:
    source = _tree(tmp_path / "model", MODEL_FILES)
    runner = CliRunner()
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "150"}  # rich then draws as on a terminal
    base = ["--url", live_server, "--token", admin_token, "filesets"]
    ok(runner.invoke(app, [*base, "create", "default", "llama"]))
    uploaded = ok(runner.invoke(app, [*base, "upload", str(source), "default/llama", "--json"], env=env))
    assert json.loads(uploaded.stdout)["uploaded"] == 4  # stdout stays clean for scripts
    assert "Uploading" in uploaded.stderr
    assert "4/4 files" in uploaded.stderr
    assert "1.0/1.0 MB" in uploaded.stderr
    downloaded = ok(runner.invoke(app, [*base, "download", "default/llama", str(tmp_path / "copy")], env=env))
    assert "Downloading" in downloaded.stderr
    assert "4/4 files" in downloaded.stderr
    assert "Downloaded 4 files" in downloaded.stderr
    skipped = ok(runner.invoke(app, [*base, "upload", str(source), "default/llama"], env=env))
    assert "4 unchanged" in skipped.stderr


# --- models -----------------------------------------------------------------------------------------------------


@pytest.fixture
def worker_thread(db: Database, settings: Settings) -> Iterator[Worker]:
    """A worker in background threads, as `modelyard serve` runs one, so that model versions get checked."""
    running = Worker(db, settings, name="background")
    running.start()
    yield running
    running.stop()


LLAMA_TENSORS = tiny_llama_tensors()
LLAMA_FILES = {
    "config.json": config_bytes("llama-3.2-1b"),
    "model.safetensors": safetensors_bytes(LLAMA_TENSORS),
    "tokenizer.json": b'{"version": "1.0"}',
}


def _fields(result: Result) -> dict[str, str]:
    """A `show` table as {field: value} (indented spec fields keep their indent)."""
    fields = {}
    for line in ok(result).stdout.splitlines():
        match = re.match(r"^(\s*\S+(?: \S+)*)\s{2,}(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def _upload_llama(run: Run, tmp_path: Path, fileset: str = "llama-files") -> str:
    ok(run("filesets", "create", "default", fileset, "--purpose", "model"))
    ok(run("filesets", "upload", str(_tree(tmp_path / fileset, LLAMA_FILES)), f"default/{fileset}"))
    return f"default/{fileset}"


def test_models(run: Run, tmp_path: Path, worker_thread: Worker) -> None:
    path = _upload_llama(run, tmp_path)
    created_with_wait = run(
        "models", "create", "default", "llama", "--type", "chat_completion", "--description", "Llama 3.2 1B",
        "--display-name", "Llama", "--label", "team=nlp", "--label", "tier=1",
        "--base-model-type", "llama_3_2_1b", "--model-path", path, "--wait", "--timeout", "60", "--json",
    )  # fmt: skip
    created = as_json(created_with_wait)
    assert (created["model_type"], created["description"], created["display_name"]) == (
        "CHAT_COMPLETION",
        "Llama 3.2 1B",
        "Llama",
    )
    assert created["labels"] == {"team": "nlp", "tier": "1"}
    assert created["new_version"]["status"] == "READY"
    assert created["current_version"]["name"] == "v1"
    assert created["spec"]["hidden_size"] == 2048
    assert "Version 'v1' of model 'default/llama' is READY: 3 files" in created_with_wait.stderr

    shown = _fields(run("models", "show", "default/llama"))
    assert shown["type"] == "CHAT_COMPLETION"
    assert shown["labels"] == "team=nlp, tier=1"
    assert re.fullmatch(r"v1 \(READY, digest [0-9a-f]{12}\)", shown["current version"])
    assert shown["spec"] == "of the current version, v1"
    assert shown["  architecture"] == "LlamaForCausalLM"
    assert shown["  parameters"] == f"{numel(LLAMA_TENSORS) / 1000:.3g}K ({numel(LLAMA_TENSORS)})"
    assert shown["  dtype"] == "bfloat16"
    assert shown["  layers"] == "16"
    assert shown["  kv heads"] == "8"
    assert shown["  context length"] == "131072"
    assert as_json(run("models", "show", "default/llama", "--json"))["id"] == created["id"]

    bare = _fields(run("models", "create", "default", "embedder", "--type", "EMBEDDING", "--visibility", "public"))
    assert (bare["visibility"], bare["current version"]) == ("PUBLIC", "-")
    assert "spec" not in bare
    ok(run("models", "create", "default", "scratch", "--label", "team=search", "--json"))
    assert [m["name"] for m in as_json(run("models", "list", "default", "--sort", "name", "--json"))] == [
        "embedder",
        "llama",
        "scratch",
    ]
    for options, expected in (
        (["--type", "embedding"], ["embedder"]),
        (["--visibility", "PUBLIC"], ["embedder"]),
        (["--name-prefix", "ll"], ["llama"]),
        (["--label", "team=nlp"], ["llama"]),
        (["--label", "team=nlp", "--label", "tier=2"], []),
        (["--limit", "2", "--page-size", "1", "--sort", "-name"], ["scratch", "llama"]),
    ):
        assert [m["name"] for m in as_json(run("models", "list", "default", *options, "--json"))] == expected, options
    rows = table_rows(run("models", "list", "default", "--sort", "name"))
    assert rows[1][:5] == ["llama", "CHAT_COMPLETION", "PRIVATE", "v1", "team=nlp,"]
    assert rows[0][:4] == ["embedder", "EMBEDDING", "PUBLIC", "-"]

    updated = as_json(
        run("models", "update", "default/scratch", "--description", "d", "--label", "team=nlp", "--type", "agent",
            "--json")
    )  # fmt: skip
    assert (updated["description"], updated["labels"], updated["model_type"]) == ("d", {"team": "nlp"}, "AGENT")

    v2 = _fields(
        run("models", "versions", "create", "default/llama", "--base-model-type", "LLAMA_3_2_1B", "--model-path", path,
            "--name", "v2", "--description", "second", "--wait")
    )  # fmt: skip
    assert (v2["name"], v2["status"], v2["current"], v2["model path"]) == ("v2", "READY", "no", path)
    assert v2["files"] == "3"
    assert v2["  architecture"] == "LlamaForCausalLM"
    pending = as_json(
        run("models", "versions", "create", "default/llama", "--base-model-type", "LLAMA_3_2_1B", "--model-path", path,
            "--json")
    )  # fmt: skip
    assert (pending["name"], pending["status"]) == ("v3", "CREATING")
    assert as_json(run("models", "versions", "wait", "default/llama", "v3", "--json"))["status"] == "READY"

    listed = as_json(run("models", "versions", "list", "default/llama", "--sort", "name", "--json"))
    assert [(v["name"], v["is_current"]) for v in listed] == [("v1", True), ("v2", False), ("v3", False)]
    assert len(as_json(run("models", "versions", "list", "default/llama", "--status", "ready", "--json"))) == 3
    assert (
        as_json(run("models", "versions", "list", "default/llama", "--name-prefix", "v2", "--json"))[0]["name"] == "v2"
    )
    rows = table_rows(run("models", "versions", "list", "default/llama", "--sort", "name", "--limit", "1"))
    assert rows[0][:5] == ["v1", "READY", "yes", "LLAMA_3_2_1B", path]

    files = as_json(run("models", "versions", "files", "default/llama", "v1", "--json"))
    assert [f["path"] for f in files] == ["config.json", "model.safetensors", "tokenizer.json"]
    rows = table_rows(run("models", "versions", "files", "default/llama", "v1", "--sort", "-path", "--page-size", "1"))
    assert [r[0] for r in rows] == ["tokenizer.json", "model.safetensors", "config.json"]
    assert rows[0][-1] == files[2]["sha256"][:12]

    current = as_json(run("models", "set-current", "default/llama", "v2", "--json"))
    assert current["current_version"]["name"] == "v2"
    assert _fields(run("models", "versions", "show", "default/llama", "v2"))["current"] == "yes"
    described = as_json(run("models", "versions", "update", "default/llama", "v1", "--description", "first", "--json"))
    assert described["description"] == "first"
    failed(run("models", "versions", "delete", "default/llama", "v2", "--yes"), "VERSION_IN_USE")
    assert run("models", "versions", "delete", "default/llama", "v1", input="n\n").exit_code == 1
    deleted = ok(run("models", "versions", "delete", "default/llama", "v1", input="y\n"))
    assert "Deleted version 'v1' of model 'default/llama'." in deleted.stderr
    failed(run("models", "versions", "show", "default/llama", "v1"), "VERSION_NOT_FOUND")

    gone = ok(run("models", "delete", "default/llama", "--cascade", "--yes"))
    assert (gone.stdout, gone.stderr.strip()) == ("", "Deleted model 'default/llama'.")
    failed(run("models", "show", "default/llama"), "MODEL_NOT_FOUND")


def test_models_failed_versions_exit_1_with_the_reason(run: Run, tmp_path: Path, worker_thread: Worker) -> None:
    result = run(
        "models", "create", "default", "m", "--base-model-type", "X", "--model-path", "default/no-such-files", "--wait"
    )
    assert result.exit_code == 1, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("VERSION_FAILED: Version 'v1' of model 'default/m' failed: ")
    assert "default/no-such-files" in first
    assert re.search(r"^new version\s+v1 \(FAILED: .*default/no-such-files", result.stdout, re.MULTILINE)

    again = run(
        "models", "versions", "create", "default/m", "--base-model-type", "X", "--model-path", "default/gone",
        "--name", "broken", "--wait", "--json",
    )  # fmt: skip
    assert again.exit_code == 1
    assert json.loads(again.stdout)["status"] == "FAILED"  # stdout still carries the version for scripts
    assert again.stderr.startswith("VERSION_FAILED: Version 'broken' of model 'default/m' failed: ")
    waited = run("models", "versions", "wait", "default/m", "broken")
    assert waited.exit_code == 1
    assert "default/gone" in waited.stderr.splitlines()[0]
    assert _fields(run("models", "versions", "show", "default/m", "broken"))["status"] == "FAILED"
    stderr = failed(run("models", "set-current", "default/m", "broken"), "VERSION_NOT_READY")
    assert "If the version failed, it cannot be updated to the current version" in stderr
    rows = table_rows(run("models", "versions", "list", "default/m", "--status", "FAILED", "--sort", "name"))
    assert [r[:2] for r in rows] == [["broken", "FAILED"], ["v1", "FAILED"]]


def test_models_wait_timeout_exits_1(run: Run) -> None:
    ok(run("models", "create", "default", "m"))
    timed_out = run(
        "models", "versions", "create", "default/m", "--base-model-type", "X", "--model-path", "default/x",
        "--wait", "--timeout", "0.3",
    )  # fmt: skip  # no worker runs: the version stays CREATING
    stderr = failed(timed_out, "WAIT_TIMEOUT")
    assert "Version 'v1' of model 'default/m' is still CREATING" in stderr
    assert "worker" in stderr
    failed(run("models", "versions", "wait", "default/m", "v1", "--timeout", "0"), "WAIT_TIMEOUT")


def test_models_spinner_on_a_terminal(live_server: str, admin_token: str) -> None:
    runner = CliRunner()
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "150"}  # rich then draws as on a terminal
    base = ["--url", live_server, "--token", admin_token, "models"]
    ok(runner.invoke(app, [*base, "create", "default", "m", "--base-model-type", "X", "--model-path", "default/x"]))
    waited = runner.invoke(app, [*base, "versions", "wait", "default/m", "v1", "--timeout", "1"], env=env)
    assert waited.exit_code == 1
    assert "Waiting for default/m version v1: CREATING" in waited.stderr
    assert "WAIT_TIMEOUT" in waited.stderr


def test_models_usage_errors(run: Run) -> None:
    create = ("models", "create", "default", "m")
    for args in (
        (*create, "--model-path", "default/x"),  # no --base-model-type
        (*create, "--base-model-type", "X"),  # no path
        (*create, "--base-model-type", "X", "--model-path", "default/x", "--local-model-path", "/srv/x"),
        (*create, "--wait"),  # nothing to wait for
        (*create, "--label", "team"),
        ("models", "show", "llama"),
        ("models", "show", "a/b/c"),
        ("models", "versions", "create", "default/m", "--model-path", "default/x"),
        ("models", "versions", "create", "default/m", "--base-model-type", "X"),
        ("models", "versions", "wait", "default/m"),
        ("models", "list", "default", "--label", "=x"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
    assert ok(run("models", "list", "default")).stderr.strip() == "(no results)"
    failed(run(*create, "--type", "image"), "VALIDATION_ERROR")
    failed(run("models", "list", "nowhere"), "WORKSPACE_NOT_FOUND")
    ok(run(*create))
    failed(
        run("models", "versions", "create", "default/m", "--base-model-type", "X", "--local-model-path", "/srv/x"),
        "LOCAL_PATH_NOT_ALLOWED",
    )
    failed(run("models", "versions", "files", "default/m", "v9"), "VERSION_NOT_FOUND")


def test_base_model_types(run: Run, tmp_path: Path, worker_thread: Worker) -> None:
    assert as_json(run("base-model-types", "--json")) == []
    path = _upload_llama(run, tmp_path)
    ok(run("models", "create", "default", "m", "--base-model-type", "LLAMA_3_2_1B", "--model-path", path, "--wait"))
    types = as_json(run("base-model-types", "--json"))
    assert types == [
        {
            "base_model_type": "LLAMA_3_2_1B",
            "versions": 1,
            "ready_versions": 1,
            "architectures": ["LlamaForCausalLM"],
            "families": ["llama"],
            "max_position_embeddings": 131072,
        }
    ]
    assert table_rows(run("base-model-types")) == [["LLAMA_3_2_1B", "1", "1", "LlamaForCausalLM", "llama", "131072"]]


# --- adapters and lineage ---------------------------------------------------------------------------------------

ADAPTERS = Path(__file__).parent / "fixtures" / "adapters"


def _base_model(run: Run, name: str = "tiny-llama", base: str = "tiny-llama") -> str:
    """A model whose READY version holds tests/fixtures/adapters/bases/<base>/config.json."""
    ok(run("filesets", "create", "default", f"{name}-files", "--purpose", "model"))
    ok(run("filesets", "upload", str(ADAPTERS / "bases" / base), f"default/{name}-files"))
    ok(
        run(
            "models",
            "create",
            "default",
            name,
            "--base-model-type",
            "TINY",
            "--model-path",
            f"default/{name}-files",
            "--wait",
            "--timeout",
            "60",
        )
    )
    return f"default/{name}"


def _check_table(text: str) -> dict[str, tuple[str, str]]:
    """The CHECK / OK / MESSAGE table of a compatibility report as {check: (mark, message)}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^CHECK\s+OK\s+MESSAGE", line))
    rows = {}
    for line in lines[start + 1 :]:
        match = re.match(r"^(\w+)\s+([✓✗])\s+(.*)$", line)
        if not match:
            break
        rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_adapters_add_shows_the_report(run: Run, worker_thread: Worker) -> None:
    model = _base_model(run)
    added = run(
        "adapters", "add", model, str(ADAPTERS / "lora-llama"), "--name", "support-lora", "--description", "Tickets"
    )
    fields = _fields(added)
    assert fields["name"] == "support-lora"
    assert fields["model"] == "default/tiny-llama"
    assert fields["finetuning type"] == "lora"  # read from adapter_config.json
    assert fields["enabled"] == "yes"
    assert fields["source"] == "fileset default/support-lora"
    assert fields["compatibility"] == "compatible (against version v1)"
    assert fields["lora config"] == "rank 8, alpha 16, dropout 0.05, modules q_proj, v_proj"
    checks = _check_table(added.stdout)
    assert set(checks) >= {"peft_type", "rank", "alpha", "target_modules", "tensor_shapes", "layer_indices"}
    assert all(mark == "✓" for mark, _message in checks.values())
    assert re.match(r"Uploaded 2 files \(.+\) to default/support-lora in ", added.stderr)
    assert as_json(run("filesets", "show", "default/support-lora", "--json"))["purpose"] == "model"

    shown = as_json(run("adapters", "show", "default/support-lora", "--json"))
    assert shown["compatibility"]["status"] == "compatible"
    assert _check_table(ok(run("adapters", "show", "default/support-lora")).stdout) == checks
    again = as_json(
        run(
            "adapters",
            "add",
            model,
            str(ADAPTERS / "lora-llama"),
            "--name",
            "support-lora-2",
            "--fileset",
            "support-lora",
            "--finetuning-type",
            "LoRA",
            "--disabled",
            "--json",
        )
    )
    assert (again["fileset"], again["finetuning_type"], again["enabled"]) == ("default/support-lora", "lora", False)
    assert (
        "skipped 2 unchanged files"
        in run(
            "adapters",
            "add",
            model,
            str(ADAPTERS / "lora-llama"),
            "--name",
            "support-lora-3",
            "--fileset",
            "support-lora",
        ).stderr
    )
    failed(
        run("adapters", "add", model, str(ADAPTERS / "lora-llama"), "--name", "support-lora"), "ADAPTER_ALREADY_EXISTS"
    )


def test_adapters_add_refuses_an_incompatible_adapter(run: Run, worker_thread: Worker) -> None:
    model = _base_model(run)
    refused = run("adapters", "add", model, str(ADAPTERS / "broken-hidden-size"), "--name", "wide")
    stderr = failed(refused, "ADAPTER_INCOMPATIBLE")
    rows = _check_table(stderr)
    assert rows["tensor_shapes"][0] == "✗"
    assert "input features" in rows["tensor_shapes"][1]
    assert "Uploaded 2 files" in stderr
    assert f"modelyard adapters register {model} --name wide --fileset default/wide --finetuning-type lora" in stderr
    failed(run("adapters", "show", "default/wide"), "ADAPTER_NOT_FOUND")
    # The files stayed: registered from the fileset without an upload, stored disabled on request.
    stderr = failed(
        run("adapters", "register", model, "--name", "wide", "--fileset", "wide", "--finetuning-type", "lora"),
        "ADAPTER_INCOMPATIBLE",
    )
    assert "--allow-incompatible" in stderr
    stored = run(
        "adapters",
        "register",
        model,
        "--name",
        "wide",
        "--fileset",
        "default/wide",
        "--finetuning-type",
        "lora",
        "--allow-incompatible",
        "--json",
    )
    adapter = as_json(stored)
    assert (adapter["enabled"], adapter["compatibility"]["status"]) == (False, "incompatible")
    assert "failed its check and is stored disabled" in stored.stderr
    assert _check_table(ok(run("adapters", "show", "default/wide")).stdout)["tensor_shapes"][0] == "✗"
    failed(run("adapters", "enable", "default/wide"), "ADAPTER_INCOMPATIBLE")
    for fixture, check in (("broken-rank", "rank"), ("broken-layer-index", "layer_indices")):
        stderr = failed(
            run("adapters", "add", model, str(ADAPTERS / fixture), "--name", fixture), "ADAPTER_INCOMPATIBLE"
        )
        assert _check_table(stderr)[check][0] == "✗"


def test_adapters_add_progress_bar_on_a_terminal(
    live_server: str, admin_token: str, run: Run, worker_thread: Worker
) -> None:
    model = _base_model(run)
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "150"}  # rich then draws as on a terminal
    args = ["--url", live_server, "--token", admin_token, "adapters", "add", model, str(ADAPTERS / "lora-llama")]
    added = ok(CliRunner().invoke(app, [*args, "--name", "support-lora", "--json"], env=env))
    assert json.loads(added.stdout)["compatibility"]["status"] == "compatible"  # stdout stays clean for scripts
    assert "Uploading" in added.stderr
    assert "2/2 files" in added.stderr


def test_adapters_list_enable_disable_delete(run: Run, worker_thread: Worker) -> None:
    llama = _base_model(run)
    qwen = _base_model(run, "tiny-qwen2", "tiny-qwen2")
    ok(run("adapters", "add", llama, str(ADAPTERS / "lora-llama"), "--name", "llama-lora"))
    ok(run("adapters", "add", llama, str(ADAPTERS / "dora-llama"), "--name", "llama-dora"))
    ok(run("adapters", "add", qwen, str(ADAPTERS / "lora-qwen2"), "--name", "qwen-lora"))
    assert as_json(run("adapters", "show", "default/llama-dora", "--json"))["finetuning_type"] == "dora"

    def names(*options: str) -> list[str]:
        return sorted(a["name"] for a in as_json(run("adapters", "list", "default", *options, "--json")))

    assert names() == ["llama-dora", "llama-lora", "qwen-lora"]
    assert names("--model", "tiny-llama") == ["llama-dora", "llama-lora"]
    assert names("--model", "default/tiny-qwen2") == ["qwen-lora"]
    assert names("--finetuning-type", "LORA") == ["llama-lora", "qwen-lora"]
    assert names("--fileset", "default/qwen-lora") == ["qwen-lora"]
    assert names("--name-prefix", "llama-") == ["llama-dora", "llama-lora"]
    assert names("--disabled") == []

    disabled = ok(run("adapters", "disable", "default/llama-dora"))
    assert disabled.stdout == ""
    assert "Adapter 'default/llama-dora' is disabled." in disabled.stderr
    assert names("--disabled") == ["llama-dora"]
    assert names("--enabled") == ["llama-lora", "qwen-lora"]
    assert as_json(run("adapters", "enable", "default/llama-dora", "--json"))["enabled"] is True
    assert names("--disabled") == []

    header = ok(run("adapters", "list", "default")).stdout.splitlines()[0].split()
    assert header == ["NAME", "MODEL", "VERSION", "TYPE", "ENABLED", "COMPATIBILITY", "SOURCE", "UPDATED"]
    rows = table_rows(run("adapters", "list", "default", "--sort", "name"))
    assert [r[:6] for r in rows] == [
        ["llama-dora", "default/tiny-llama", "v1", "dora", "yes", "compatible"],
        ["llama-lora", "default/tiny-llama", "v1", "lora", "yes", "compatible"],
        ["qwen-lora", "default/tiny-qwen2", "v1", "lora", "yes", "compatible"],
    ]
    assert len(as_json(run("adapters", "list", "default", "--limit", "2", "--json"))) == 2

    updated = as_json(run("adapters", "update", "default/llama-lora", "--description", "new", "--json"))
    assert updated["description"] == "new"
    stderr = failed(run("adapters", "update", "default/llama-lora", "--fileset", "qwen-lora"), "ADAPTER_INCOMPATIBLE")
    assert "✗" in stderr
    declined = run("adapters", "delete", "default/llama-lora", input="n\n")
    assert declined.exit_code == 1
    deleted = ok(run("adapters", "delete", "default/llama-lora", "--yes"))
    assert "Deleted adapter 'default/llama-lora'." in deleted.stderr
    failed(run("adapters", "show", "default/llama-lora"), "ADAPTER_NOT_FOUND")
    assert as_json(run("filesets", "show", "default/llama-lora", "--json"))["file_count"] == 2  # the files stay
    registry = as_json(
        run(
            "adapters",
            "register",
            llama,
            "--name",
            "from-mlflow",
            "--finetuning-type",
            "lora",
            "--model-registry",
            "models:/support-lora/3",
            "--tracking-uri",
            "http://mlflow:5000",
            "--lora-rank",
            "8",
            "--lora-alpha",
            "16",
            "--lora-target-module",
            "q_proj",
            "--json",
        )
    )
    assert registry["model_registry"] == {"uri": "models:/support-lora/3", "tracking_uri": "http://mlflow:5000"}
    assert registry["lora_config"]["target_modules"] == ["q_proj"]
    assert registry["compatibility"]["status"] == "unknown"
    assert (
        "model registry models:/support-lora/3 at http://mlflow:5000"
        in ok(run("adapters", "show", "default/from-mlflow")).stdout
    )
    hub = as_json(
        run(
            "adapters",
            "register",
            llama,
            "--name",
            "from-hub",
            "--finetuning-type",
            "lora",
            "--huggingface-name",
            "acme/support-lora@main",
            "--workspace",
            "default",
            "--idempotency-key",
            "k1",
            "--json",
        )
    )
    assert hub["source"]["type"] == "huggingface"
    failed(
        run(
            "adapters",
            "register",
            llama,
            "--name",
            "on-disk",
            "--finetuning-type",
            "lora",
            "--location",
            "/srv/adapters/x",
        ),
        "LOCAL_PATH_NOT_ALLOWED",
    )


def test_lineage_commands_and_the_adapter_graph(run: Run, worker_thread: Worker) -> None:
    model = _base_model(run)
    dataset = as_json(
        run(
            "datasets",
            "create",
            "default",
            "tickets",
            "--source",
            "huggingface:acme/tickets",
            "--feature",
            "question",
            "--feature",
            "answer",
            "--description",
            "Tickets",
            "--json",
        )
    )
    assert (dataset["source"], dataset["features"]) == (
        {"type": "huggingface", "ref": "acme/tickets"},
        ["question", "answer"],
    )
    prompt = as_json(
        run(
            "prompts",
            "create",
            "default",
            "support",
            "--dataset",
            "tickets",
            "--prompt-template",
            "Q: {question} A: {answer}",
            "--input-template",
            "Q: {question} A:",
            "--completion-template",
            " {answer}",
            "--json",
        )
    )
    assert prompt["dataset"] == "tickets"
    job = as_json(
        run(
            "fine-tuning-jobs",
            "create",
            "default",
            "job-1",
            "--base-model",
            "tiny-llama",
            "--base-model-version",
            "v1",
            "--dataset",
            "tickets",
            "--prompt",
            "support",
            "--adapter-name",
            "support-lora",
            "--dataset-fraction",
            "0.5",
            "--train-test-split",
            "0.8",
            "--hyperparameter",
            "epochs=3",
            "--hyperparameter",
            "learning_rate=2e-4",
            "--hyperparameter",
            "optimizer=adamw",
            "--status",
            "running",
            "--json",
        )
    )
    assert job["hyperparameters"] == {"epochs": 3, "learning_rate": 2e-4, "optimizer": "adamw"}
    assert (job["status"], job["base_model"], job["base_model_version"]) == ("RUNNING", model, "v1")
    ok(run("fine-tuning-jobs", "create", "default", "job-2", "--base-model", model))

    ok(
        run(
            "adapters",
            "add",
            model,
            str(ADAPTERS / "lora-llama"),
            "--name",
            "support-lora",
            "--fine-tuning-job",
            "job-1",
            "--prompt",
            "support",
        )
    )
    ok(run("adapters", "add", model, str(ADAPTERS / "lora-llama"), "--name", "plain", "--fileset", "support-lora"))
    tree = ok(run("adapters", "lineage", "default/support-lora")).stdout
    assert tree.splitlines()[0] == "adapter default/support-lora"
    for line in (
        "adapts model version v1",
        "version of model default/tiny-llama",
        "produced by fine-tuning job job-1",
        "formatted by prompt support",
        "fed by dataset tickets",
    ):
        assert line in tree, tree
    graph = as_json(run("adapters", "lineage", "default/support-lora", "--json"))
    assert {n["kind"] for n in graph["nodes"]} == {
        "dataset",
        "prompt",
        "fine_tuning_job",
        "adapter",
        "model_version",
        "model",
    }
    split = as_json(run("adapters", "dataset-split", "default/support-lora", "--json"))
    assert split == {
        "dataset_fraction": pytest.approx(0.5),
        "train_test_split": pytest.approx(0.8),
        "fine_tuning_job": "job-1",
    }
    default_split = _fields(run("adapters", "dataset-split", "default/plain"))
    assert default_split == {
        "dataset fraction": "1.0",
        "train/test split": "0.9",
        "fine-tuning job": "none (the defaults)",
    }
    assert (
        as_json(run("adapters", "update", "default/plain", "--fine-tuning-job", "job-2", "--json"))["fine_tuning_job"]
        == "job-2"
    )

    assert [d["name"] for d in as_json(run("datasets", "list", "default", "--name-prefix", "tick", "--json"))] == [
        "tickets"
    ]
    assert table_rows(run("datasets", "list", "default"))[0][:3] == ["tickets", "huggingface:acme/tickets", "question,"]
    assert [p["name"] for p in as_json(run("prompts", "list", "default", "--json"))] == ["support"]
    assert [
        j["name"] for j in as_json(run("fine-tuning-jobs", "list", "default", "--status", "pending", "--json"))
    ] == ["job-2"]
    assert [r[0] for r in table_rows(run("fine-tuning-jobs", "list", "default", "--sort", "name"))] == [
        "job-1",
        "job-2",
    ]
    assert _fields(run("datasets", "show", "default/tickets"))["features"] == "question, answer"
    assert as_json(run("datasets", "update", "default/tickets", "--feature", "q", "--json"))["features"] == ["q"]
    assert _fields(run("prompts", "show", "default/support"))["dataset"] == "tickets"
    assert (
        as_json(run("prompts", "update", "default/support", "--completion-template", "{answer}", "--json"))[
            "completion_template"
        ]
        == "{answer}"
    )
    finished = as_json(
        run(
            "fine-tuning-jobs",
            "update",
            "default/job-1",
            "--status",
            "completed",
            "--finished-at",
            "2025-06-02T10:00:00",
            "--hyperparameter",
            "epochs=4",
            "--json",
        )
    )
    assert (finished["status"], finished["hyperparameters"]) == ("COMPLETED", {"epochs": 4})
    assert finished["finished_at"].startswith("2025-06-02T10:00:00")
    assert _fields(run("fine-tuning-jobs", "show", "default/job-1"))["status"] == "COMPLETED"
    ok(run("fine-tuning-jobs", "delete", "default/job-2", "--yes"))
    failed(run("fine-tuning-jobs", "show", "default/job-2"), "FINE_TUNING_JOB_NOT_FOUND")
    ok(run("prompts", "delete", "default/support", "--yes"))
    ok(run("datasets", "delete", "default/tickets", "--yes"))
    assert as_json(run("datasets", "list", "default", "--json")) == []
    failed(
        run("datasets", "create", "default", "d", "--source", "url:https://x", "--description", "x" * 1001),
        "VALIDATION_ERROR",
    )


def test_adapters_and_lineage_usage_errors(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (
        ("adapters", "add", "tiny-llama", str(ADAPTERS / "lora-llama"), "--name", "x"),  # not WS/MODEL
        ("adapters", "add", "default/m", str(tmp_path / "missing"), "--name", "x"),
        ("adapters", "add", "default/m", str(empty), "--name", "x"),  # no adapter_config.json, no --finetuning-type
        ("adapters", "add", "default/m", str(ADAPTERS / "lora-llama")),  # no --name
        ("adapters", "add", "default/m", str(ADAPTERS / "lora-llama"), "--name", "x", "--fileset", "a/b/c"),
        ("adapters", "add", "default/m", str(ADAPTERS / "lora-llama"), "--name", "x", "--lora-alpha", "16"),
        ("adapters", "register", "default/m", "--name", "x", "--finetuning-type", "lora"),  # no source
        (
            "adapters",
            "register",
            "default/m",
            "--name",
            "x",
            "--finetuning-type",
            "lora",
            "--fileset",
            "f",
            "--huggingface-name",
            "a/b",
        ),
        (
            "adapters",
            "register",
            "default/m",
            "--name",
            "x",
            "--finetuning-type",
            "lora",
            "--fileset",
            "f",
            "--tracking-uri",
            "http://mlflow",
        ),
        ("adapters", "show", "x"),
        ("adapters", "lineage", "a/b/c"),
        ("datasets", "create", "default", "d", "--source", "ftp:x"),
        ("datasets", "create", "default", "d"),
        ("fine-tuning-jobs", "create", "default", "j", "--base-model", "m", "--hyperparameter", "epochs"),
        ("fine-tuning-jobs", "update", "default/j", "--started-at", "yesterday"),
        ("prompts", "show", "support"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
    assert ok(run("adapters", "list", "default")).stderr.strip() == "(no results)"
    failed(run("adapters", "list", "nowhere"), "WORKSPACE_NOT_FOUND")
    failed(
        run(
            "adapters",
            "register",
            "default/nope",
            "--name",
            "x",
            "--finetuning-type",
            "lora",
            "--model-registry",
            "models:/x/1",
        ),
        "MODEL_NOT_FOUND",
    )
    failed(
        run(
            "adapters",
            "register",
            "default/nope",
            "--name",
            "x",
            "--finetuning-type",
            "lorax",
            "--model-registry",
            "models:/x/1",
        ),
        "VALIDATION_ERROR",
    )
    failed(run("fine-tuning-jobs", "create", "default", "j", "--base-model", "nope"), "MODEL_NOT_FOUND")


# --- model templates --------------------------------------------------------------------------------------------

TEMPLATE_YAML = """\
name: vllm-chat
description: vLLM chat server
endpoint_type: STREAMING
model_type: CHAT_COMPLETION
endpoint_protocol: VLLM
vendor_configuration:
  bundle_config:
    registry: registry.example.com
    image: vllm
    tag: 0.6.3
    command: [vllm, serve, "${model_weights_uri}", --max-model-len, "${max_model_len}"]
  endpoint_config:
    gpus: 1
    gpu_type: nvidia-ampere-a10
model_creation_parameters_schema:
  parameters:
    - {name: model_weights_uri, type: str, description: Where the weights are, required: true}
    - {name: max_model_len, type: int, description: Context length, required: false}
model_request_parameters_schema:
  parameters:
    - {name: lang, type: str, description: Answer language, required: true}
    - {name: n, type: int, description: How many answers, required: false}
"""


def test_templates(run: Run, tmp_path: Path) -> None:
    import yaml

    (tmp_path / "template.yaml").write_text(TEMPLATE_YAML)
    body = yaml.safe_load(TEMPLATE_YAML)
    (tmp_path / "embed.json").write_text(
        json.dumps({**body, "name": "embedder", "model_type": "EMBEDDING", "endpoint_type": "SYNC"})
    )
    ok(run("workspaces", "create", "other"))

    created = as_json(run("templates", "create", "default", "-f", str(tmp_path / "template.yaml"), "--json"))
    assert (created["name"], created["workspace"], created["endpoint_protocol"]) == ("vllm-chat", "default", "VLLM")
    assert created["vendor_configuration"]["bundle_config"]["tag"] == "0.6.3"  # a string, as YAML wrote it
    assert created["vendor_configuration"]["endpoint_config"]["memory"] == "8Gi"
    table = ok(run("templates", "create", "other", "--file", str(tmp_path / "embed.json")))
    assert re.search(r"^name\s+embedder\s*$", table.stdout, re.MULTILINE)
    assert re.search(r"^image\s+registry\.example\.com/vllm:0\.6\.3\s*$", table.stdout, re.MULTILINE)
    renamed = as_json(run("templates", "create", "other", "-f", str(tmp_path / "embed.json"), "--name", "e2", "--json"))
    assert renamed["name"] == "e2"

    every = as_json(run("templates", "list", "--json", "--sort", "name"))
    assert [(t["workspace"], t["name"]) for t in every] == [
        ("other", "e2"), ("other", "embedder"), ("default", "vllm-chat")
    ]  # fmt: skip
    assert [t["name"] for t in as_json(run("templates", "list", "--all", "--type", "embedding", "--json"))] == [
        "e2",
        "embedder",
    ]
    assert [t["name"] for t in as_json(run("templates", "list", "default", "--json"))] == ["vllm-chat"]
    rows = table_rows(run("templates", "list", "other", "--sort", "name", "--endpoint-type", "sync"))
    assert [r[:2] for r in rows] == [["other", "e2"], ["other", "embedder"]]
    assert ok(run("templates", "list")).stdout.splitlines()[0].split()[:3] == ["WORKSPACE", "NAME", "MODEL"]

    shown = ok(run("templates", "show", "default/vllm-chat")).stdout
    assert "model_weights_uri (str, required), max_model_len (int)" in shown
    assert "1 x nvidia-ampere-a10" in shown
    assert as_json(run("templates", "show", "default/vllm-chat", "--json"))["id"] == created["id"]
    updated = as_json(run("templates", "update", "default/vllm-chat", "--description", "new", "--json"))
    assert updated["description"] == "new"

    # a model from the template: --param values go as strings, and the server says what it coerced
    made = run(
        "models", "create", "default", "llama-chat", "--template", "vllm-chat",
        "--param", "model_weights_uri=s3://weights/llama", "--param", "max_model_len=8192", "--json",
    )  # fmt: skip
    model = as_json(made)
    assert model["model_type"] == "CHAT_COMPLETION"
    assert model["model_creation_parameters"] == {"model_weights_uri": "s3://weights/llama", "max_model_len": 8192}
    assert 'Read max_model_len="8192" as int 8192.' in made.stderr
    table = ok(run("models", "show", "default/llama-chat")).stdout
    assert re.search(r"^template\s+default/vllm-chat\s*$", table, re.MULTILINE)
    stderr = failed(
        run("models", "create", "default", "bad", "--template", "vllm-chat", "--param", "max_model_len=long"),
        "INVALID_MODEL_CREATION_PARAMETERS",
    )
    assert "model_creation_parameters.model_weights_uri" in stderr
    assert "model_creation_parameters.max_model_len" in stderr

    launch = yaml.safe_load(ok(run("models", "launch-config", "default/llama-chat")).stdout)
    assert launch["model_template"] == "default/vllm-chat"
    bundle = launch["vendor_configuration"]["bundle_config"]
    assert bundle["command"] == ["vllm", "serve", "s3://weights/llama", "--max-model-len", "8192"]
    assert bundle["env"] == {"model_weights_uri": "s3://weights/llama", "max_model_len": "8192"}
    assert as_json(run("models", "launch-config", "default/llama-chat", "--json")) == launch

    checked = run("models", "validate-request", "default/llama-chat", "--binding", "lang=en", "--binding", "n=2")
    assert table_rows(checked) == [["lang", "en", "str"], ["n", "2", "int"]]
    assert 'Read n="2" as int 2.' in checked.stderr
    answer = as_json(run("models", "validate-request", "default/llama-chat", "--binding", "lang=en", "--json"))
    assert answer == {"model_request_parameters": {"bindings": {"lang": "en"}}, "coercions": []}
    stderr = failed(
        run("models", "validate-request", "default/llama-chat", "--binding", "n=many", "--binding", "x=1"),
        "INVALID_MODEL_REQUEST_PARAMETERS",
    )
    for name in ("lang", "n", "x"):
        assert f"model_request_parameters.bindings.{name}:" in stderr
    schema = as_json(run("models", "request-schema", "default/llama-chat", "--json"))
    assert "model_request_parameters" in schema["required"]
    assert yaml.safe_load(ok(run("models", "request-schema", "default/llama-chat")).stdout) == schema

    stderr = failed(run("templates", "delete", "default/vllm-chat", "--yes"), "MODEL_TEMPLATE_IN_USE")
    assert "default/llama-chat" in stderr
    ok(run("models", "delete", "default/llama-chat", "--yes"))
    declined = run("templates", "delete", "default/vllm-chat", input="n\n")
    assert declined.exit_code == 1
    deleted = ok(run("templates", "delete", "default/vllm-chat", "--yes"))
    assert "Deleted model template 'default/vllm-chat'" in deleted.stderr
    failed(run("templates", "show", "default/vllm-chat"), "MODEL_TEMPLATE_NOT_FOUND")


def test_templates_usage_errors(run: Run, tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.json").write_text("{not json")
    for args, hint in (
        (("templates", "create", "default", "-f", str(tmp_path / "missing.yaml")), "Cannot read"),
        (("templates", "create", "default", "-f", str(tmp_path / "list.yaml")), "must hold one object"),
        (("templates", "create", "default", "-f", str(tmp_path / "bad.json")), "not valid JSON"),
        (("templates", "list", "default", "--all"), "either WS or --all"),
        (("templates", "show", "vllm-chat"), "workspace/name"),
        (("models", "create", "default", "m", "--param", "a=1"), "--param needs --template"),
        (("models", "create", "default", "m", "--template", "t", "--param", "a"), "not KEY=VALUE"),
        (("models", "validate-request", "default/m", "--binding", "=1"), "not KEY=VALUE"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert hint in result.stderr, (args, result.stderr)


# --- errors, options and configuration --------------------------------------------------------------------------


def test_errors_print_code_message_and_solution(run: Run) -> None:
    stderr = failed(run("workspaces", "show", "nope"), "WORKSPACE_NOT_FOUND")
    assert "Workspace 'nope' not found" in stderr
    assert "Check the name" in stderr
    ok(run("workspaces", "create", "dup"))
    failed(run("workspaces", "create", "dup"), "WORKSPACE_ALREADY_EXISTS")
    stderr = failed(run("workspaces", "create", "bad name!"), "VALIDATION_ERROR")
    assert "body.name:" in stderr
    failed(run("members", "add", "default", "ghost", "--role", "viewer"), "USER_NOT_FOUND")
    failed(run("members", "add", "default", "admin", "--role", "owner"), "VALIDATION_ERROR")
    failed(run("workspaces", "list", token="myd_wrong"), "INVALID_TOKEN")


def test_forbidden(run: Run) -> None:
    ok(run("users", "create", "eve"))
    secret = ok(run("tokens", "create", "eve-token", "--user", "eve")).stdout.strip()
    ok(run("members", "add", "default", "eve", "--role", "viewer"))
    failed(run("workspaces", "update", "default", "--description", "x", token=secret), "INSUFFICIENT_ROLE")
    failed(run("users", "list", token=secret), "ADMIN_REQUIRED")
    assert [w["name"] for w in as_json(run("workspaces", "list", "--json", token=secret))] == ["default"]


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("workspaces", "show").exit_code == 2
    assert run("members", "add", "default", "admin").exit_code == 2  # --role is required
    bad_time = run("tokens", "create", "t", "--expires-at", "next tuesday")
    assert bad_time.exit_code == 2
    assert "--expires-at" in bad_time.stderr
    assert run("workspaces", "list", "--page-size", "0").exit_code == 2
    assert run("workspaces", "frobnicate").exit_code == 2


def test_unreachable_server_exits_1() -> None:
    result = CliRunner().invoke(app, ["workspaces", "list", "--url", "http://127.0.0.1:9", "--token", "x"])
    stderr = failed(result, "TRANSPORT_ERROR")
    assert "127.0.0.1:9" in stderr


def test_per_command_options_override_the_global_ones(live_server: str, admin_token: str) -> None:
    args = ["--url", "http://127.0.0.1:9", "--token", "wrong", "me", "--json"]
    result = CliRunner().invoke(app, [*args, "--url", live_server, "--token", admin_token])
    assert as_json(result)["name"] == "admin"


def test_environment_variables(live_server: str, admin_token: str) -> None:
    env = {"MODELYARD_URL": live_server, "MODELYARD_TOKEN": admin_token}
    assert as_json(CliRunner().invoke(app, ["me", "--json"], env=env))["name"] == "admin"


def test_admin_token_file(live_server: str, settings: Settings) -> None:
    env = {"MODELYARD_URL": live_server, "MODELYARD_HOME": str(settings.home)}
    assert as_json(CliRunner().invoke(app, ["me", "--json"], env=env))["name"] == "admin"


def test_help_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from modelyard.cli.main import app\n"
        "heavy = ('httpx', 'modelyard.client', 'fastapi', 'sqlalchemy', 'rich.table')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    helped = CliRunner().invoke(app, ["--help"])
    assert helped.exit_code == 0
    groups = (
        "workspaces", "members", "users", "tokens", "events", "filesets", "models", "base-model-types", "me",
        "adapters", "datasets", "prompts", "fine-tuning-jobs", "templates",
    )  # fmt: skip
    for group in (*groups, "serve", "worker", "db"):
        assert group in helped.stdout


# --- docs -------------------------------------------------------------------------------------------------------


def _console_blocks(text: str, info: str = "console") -> list[list[str]]:
    """The commands (`$ ...` lines, with `\\` continuations) of each ```console block (or other info string)."""
    blocks = []
    for body in re.findall(rf"^```{re.escape(info)}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        commands: list[str] = []
        pending = ""
        for line in body.splitlines():
            if pending:
                pending += "\n" + line
            elif line.startswith("$ "):
                pending = line[2:]
            if pending and not pending.endswith("\\"):
                commands.append(pending)
                pending = ""
        blocks.append(commands)
    return blocks


def _command_sections(text: str) -> dict[str, str]:
    """The sections of docs/cli.md headed "### `modelyard <command> ...`", by command."""
    sections = {}
    for part in re.split(r"^(?=#{2,3} )", text, flags=re.MULTILINE):
        heading = re.match(r"#{2,3} `modelyard ([a-z -]+?)(?: [A-Z\[-]|`)", part)
        if heading:
            sections[heading.group(1)] = part
    return sections


@pytest.mark.slow
def test_cli_reference_examples_run(database_url: str, live_server: str, admin_token: str, tmp_path: Path) -> None:
    """Every `$ modelyard ...` line of docs/cli.md runs in a real shell, in order, and exits 0."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the docs' examples run once, on SQLite: they test the docs, not the database")
    text = (DOCS / "cli.md").read_text()
    commands = [c for block in _console_blocks(text) for c in block]
    assert len(commands) >= 20
    script = "set -euo pipefail\n" + "\n".join(f"echo {shlex.quote('$ ' + c)}\n{c}" for c in commands) + "\n"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MODELYARD_URL": live_server,
        "MODELYARD_TOKEN": admin_token,
        "COLUMNS": "120",
    }
    done = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"


@pytest.mark.slow
def test_cli_models_examples_run(
    database_url: str, live_server: str, admin_token: str, worker_thread: Worker, tmp_path: Path
) -> None:
    """The ```console worker blocks of docs/cli.md (the Models section, whose versions only become READY or FAILED
    when a worker checks them) run in a real shell, in order, with a worker, and exit 0."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the docs' examples run once, on SQLite: they test the docs, not the database")
    commands = [c for block in _console_blocks((DOCS / "cli.md").read_text(), "console worker") for c in block]
    assert len(commands) >= 15
    script = "set -euo pipefail\n" + "\n".join(f"echo {shlex.quote('$ ' + c)}\n{c}" for c in commands) + "\n"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MODELYARD_URL": live_server,
        "MODELYARD_TOKEN": admin_token,
        "COLUMNS": "120",
    }
    done = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "VERSION_FAILED: Version 'broken' of model 'default/llama-tiny' failed" in done.stderr
    assert "Version 'v1' of model 'default/llama-tiny' is READY" in done.stderr


def test_cli_reference_documents_every_command_and_option() -> None:
    sections = _command_sections((DOCS / "cli.md").read_text())
    commands = {
        "workspaces create", "workspaces list", "workspaces show", "workspaces update", "workspaces delete",
        "members list", "members add", "members set-role", "members remove",
        "users create", "users list", "users show", "users update", "users delete",
        "tokens create", "tokens list", "tokens revoke", "events list", "me",
        "filesets create", "filesets list", "filesets show", "filesets update", "filesets delete", "filesets files",
        "filesets upload", "filesets download", "filesets rm",
        "models create", "models list", "models show", "models update", "models set-current", "models delete",
        "models versions create", "models versions list", "models versions show", "models versions files",
        "models versions update", "models versions delete", "models versions wait", "base-model-types",
        "adapters add", "adapters register", "adapters list", "adapters show", "adapters update", "adapters enable",
        "adapters disable", "adapters delete", "adapters dataset-split", "adapters lineage",
        "datasets create", "datasets list", "datasets show", "datasets update", "datasets delete",
        "prompts create", "prompts list", "prompts show", "prompts update", "prompts delete",
        "fine-tuning-jobs create", "fine-tuning-jobs list", "fine-tuning-jobs show", "fine-tuning-jobs update",
        "fine-tuning-jobs delete",
        "templates create", "templates list", "templates show", "templates update", "templates delete",
        "models launch-config", "models validate-request", "models request-schema",
    }  # fmt: skip
    assert commands <= set(sections), commands - set(sections)
    runner = CliRunner()
    for command in sorted(commands):
        helped = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
        assert helped.exit_code == 0
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", helped.stdout)) - {"--help", "--url", "--token"}
        for option in options:
            assert option in sections[command], f"docs/cli.md does not document {option} of `modelyard {command}`"
