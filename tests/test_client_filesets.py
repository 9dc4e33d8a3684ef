"""The SDK's filesets against the real app: metadata in-process through TestClient, file transfers over real HTTP
through live_server (so the bodies really stream), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.client import (
    BadRequestError,
    ChecksumMismatchError,
    Client,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    TransferEvent,
    UnsafePathError,
    ValidationError,
)
from modelyard.client._filesets import CHUNK_SIZE, _local_target

TREE = {
    "config.json": b'{"hidden_size": 64, "num_hidden_layers": 2}',
    "tokenizer.json": b'{"version": "1.0"}',
    "weights/model-00001-of-00002.safetensors": os.urandom(2 * CHUNK_SIZE + 12_345),
    "weights/model-00002-of-00002.safetensors": os.urandom(70_000),
    "weights/deep/nested/index.json": b'{"weight_map": {}}',
    "empty.txt": b"",
    "unicod\u00e9 name.txt": "caf\u00e9".encode(),
}


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "no-home"))


@pytest.fixture
def sdk(app: FastAPI, admin_token: str) -> Iterator[Client]:
    """In-process, through TestClient."""
    with (
        TestClient(app, raise_server_exceptions=False) as http,
        Client(base_url="http://testserver", token=admin_token, http_client=http) as client,
    ):
        yield client


@pytest.fixture
def remote(live_server: str, admin_token: str) -> Iterator[Client]:
    """Over real HTTP, through uvicorn on loopback."""
    with Client(base_url=live_server, token=admin_token) as client:
        yield client


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Corrupting(httpx.BaseTransport):
    """A network that flips one byte of every file body it carries (the server is real; only the wire lies)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "GET" or "/-/" not in request.url.path or response.status_code >= 300:
            return response
        body = response.read()
        response.close()
        damaged = bytes([body[0] ^ 0xFF]) + body[1:] if body else body
        return httpx.Response(response.status_code, headers=response.headers, content=damaged, request=request)

    def close(self) -> None:
        self.inner.close()


class NoRanges(httpx.BaseTransport):
    """A proxy that drops the Range header: the server then answers the whole file with 200."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "range" in request.headers:
            del request.headers["range"]
            self.dropped += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


# --- filesets ---------------------------------------------------------------------------------------------------


def test_fileset_lifecycle(sdk: Client) -> None:
    created = sdk.filesets.create("default", "llama-weights", description="weights", purpose="model")
    assert created["name"] == "llama-weights"
    assert created["workspace"] == "default"
    assert created["purpose"] == "model"
    assert created["storage"] == "local"
    assert (created["file_count"], created["total_size"]) == (0, 0)
    assert created["digest"] == sha(b"")
    assert created.etag

    with pytest.raises(ConflictError) as dup:
        sdk.filesets.create("default", "llama-weights")
    assert dup.value.error_code == "FILESET_ALREADY_EXISTS"
    with pytest.raises(ValidationError):
        sdk.filesets.create("default", "x", purpose="images")
    with pytest.raises(BadRequestError) as other_store:
        sdk.filesets.create("default", "x", storage="s3")
    assert other_store.value.error_code == "STORAGE_NOT_CONFIGURED"

    sdk.filesets.create("default", "squad", purpose="dataset", storage="local")
    assert [f["name"] for f in sdk.filesets.list("default", purpose="dataset")] == ["squad"]
    assert {f["name"] for f in sdk.filesets.list("default", storage="local")} == {"llama-weights", "squad"}
    assert [f["name"] for f in sdk.filesets.list("default", name_prefix="lla")] == ["llama-weights"]
    assert [f["name"] for f in sdk.filesets.list("default", sort="name", page_size=1)] == ["llama-weights", "squad"]
    with pytest.raises(BadRequestError) as unknown:
        list(sdk.filesets.list("default", colour="blue"))
    assert "purpose" in unknown.value.detail["valid"]

    got = sdk.filesets.get("default", "squad")
    assert got["id"]
    updated = sdk.filesets.update("default", "squad", description="QA pairs", purpose="generic", if_match=got.etag)
    assert (updated["description"], updated["purpose"]) == ("QA pairs", "generic")
    with pytest.raises(PreconditionFailedError):
        sdk.filesets.update("default", "squad", description="lost", if_match=got.etag)
    assert sdk.filesets.update("default", "squad")["description"] == "QA pairs"  # nothing named, nothing changed
    with pytest.raises(PreconditionFailedError):
        sdk.filesets.delete("default", "squad", if_match=got.etag)

    sdk.filesets.delete("default", "squad", if_match=sdk.filesets.get("default", "squad").etag)
    with pytest.raises(NotFoundError) as gone:
        sdk.filesets.get("default", "squad")
    assert gone.value.error_code == "FILESET_NOT_FOUND"
    with pytest.raises(NotFoundError) as no_workspace:
        sdk.filesets.get("nowhere", "squad")
    assert no_workspace.value.error_code == "WORKSPACE_NOT_FOUND"
    sdk.filesets.delete("default", "llama-weights", force=True)
    assert list(sdk.filesets.list("default")) == []


def test_idempotent_create(sdk: Client) -> None:
    first = sdk.filesets.create("default", "once", idempotency_key="fs-1")
    assert sdk.filesets.create("default", "once", idempotency_key="fs-1") == first


@pytest.mark.parametrize("ref", ["default", "a/b/c", "/b", "a/", "", "/"])
def test_fileset_refs_are_parsed_strictly(sdk: Client, tmp_path: Path, ref: str) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    calls = [
        lambda: sdk.filesets.upload_file(tmp_path / "f.txt", ref),
        lambda: sdk.filesets.upload_dir(tmp_path, ref),
        lambda: sdk.filesets.download_dir(ref, tmp_path / "out"),
        lambda: sdk.filesets.open(ref, "f.txt"),
        lambda: sdk.filesets.stat(ref, "f.txt"),
        lambda: sdk.filesets.delete_file(ref, "f.txt"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="'workspace/name'"):
            call()
    assert not (tmp_path / "out").exists()


# --- one file ---------------------------------------------------------------------------------------------------


def test_upload_stat_open_delete_one_file(remote: Client, tmp_path: Path) -> None:
    remote.filesets.create("default", "one")
    local = tmp_path / "adapter_config.json"
    local.write_bytes(b'{"r": 8}')
    events: list[TransferEvent] = []
    entry = remote.filesets.upload_file(local, "default/one", progress=events.append)
    assert entry["path"] == "adapter_config.json"  # the file name, by default
    assert (entry["size"], entry["sha256"]) == (8, sha(b'{"r": 8}'))
    assert [e.kind for e in events] == ["start", "file_start", "bytes", "file_done"]
    assert (events[0].files_total, events[0].bytes_total) == (1, 8)

    local.write_bytes(b'{"r": 16}')
    replaced = remote.filesets.upload_file(local, "default/one", "lora/adapter_config.json")
    assert replaced["path"] == "lora/adapter_config.json"
    again = remote.filesets.upload_file(local, "default/one", "adapter_config.json")
    assert again["sha256"] == sha(b'{"r": 16}')
    assert remote.filesets.get("default", "one")["file_count"] == 2

    info = remote.filesets.stat("default/one", "adapter_config.json")
    assert info == {"path": "adapter_config.json", "size": 9, "sha256": sha(b'{"r": 16}')}
    assert info.etag == f'"{info["sha256"]}"'
    with remote.filesets.open("default/one", "adapter_config.json") as stream:
        assert stream.read() == b'{"r": 16}'

    remote.filesets.delete_file("default/one", "adapter_config.json")
    with pytest.raises(NotFoundError) as gone:
        remote.filesets.stat("default/one", "adapter_config.json")
    assert gone.value.error_code == "FILE_NOT_FOUND"  # the server's own error, though HEAD answers carry no body
    with pytest.raises(NotFoundError) as twice:
        remote.filesets.delete_file("default/one", "adapter_config.json")
    assert twice.value.error_code == "FILE_NOT_FOUND"
    with pytest.raises(NotFoundError) as no_fileset:
        remote.filesets.stat("default/none", "x")
    assert no_fileset.value.error_code == "FILESET_NOT_FOUND"


def test_upload_errors(remote: Client, tmp_path: Path) -> None:
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(CHUNK_SIZE + 1))
    with pytest.raises(NotFoundError) as missing:
        remote.filesets.upload_file(local, "default/nope")
    assert missing.value.error_code == "FILESET_NOT_FOUND"
    with pytest.raises(NotFoundError) as no_workspace:
        remote.filesets.upload_file(local, "nowhere/nope")
    assert no_workspace.value.error_code == "WORKSPACE_NOT_FOUND"
    remote.filesets.create("default", "paths")
    for bad in ("../x", "/etc/passwd", "a/../../b", "a\\b", "x" * 5000, ".."):
        with pytest.raises(BadRequestError) as refused:
            remote.filesets.upload_file(local, "default/paths", bad)
        assert refused.value.error_code == "INVALID_PATH", bad
    assert remote.filesets.upload_file(local, "default/paths", "a/./b//big.bin")["path"] == "a/b/big.bin"
    assert [f["path"] for f in remote.filesets.files("default", "paths")] == ["a/b/big.bin"]
    with pytest.raises(FileNotFoundError):
        remote.filesets.upload_file(tmp_path / "absent.bin", "default/paths")


def test_roles(app: FastAPI, sdk: Client, tmp_path: Path) -> None:
    sdk.filesets.create("default", "shared")
    local = write_tree(tmp_path / "src", {"a.txt": b"a"})
    sdk.filesets.upload_dir(local, "default/shared")
    sdk.workspaces.create("private")
    sdk.filesets.create("private", "hidden")
    sdk.users.create("vera")
    sdk.members.add("default", "vera", "viewer")
    secret = sdk.tokens.create("vera-token", user="vera")["token"]
    with Client(token=secret, http_client=TestClient(app, raise_server_exceptions=False)) as vera:
        assert vera.filesets.download_dir("default/shared", tmp_path / "out").downloaded == 1
        with pytest.raises(PermissionDeniedError) as denied:
            vera.filesets.upload_file(local / "a.txt", "default/shared")
        assert denied.value.error_code == "INSUFFICIENT_ROLE"
        with pytest.raises(NotFoundError):
            vera.filesets.get("private", "hidden")  # not a member: it cannot probe what exists


# --- directories ------------------------------------------------------------------------------------------------


def test_upload_dir_download_dir_round_trip(remote: Client, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "model", TREE)
    remote.filesets.create("default", "llama", purpose="model")
    events: list[TransferEvent] = []
    summary = remote.filesets.upload_dir(source, "default/llama", progress=events.append)
    total = sum(len(d) for d in TREE.values())
    assert (summary.fileset, summary.uploaded, summary.skipped, summary.bytes) == ("default/llama", len(TREE), 0, total)
    assert summary.seconds > 0
    assert summary.bytes_per_second > 0
    assert sorted(f["path"] for f in summary.files) == sorted(TREE)

    # The progress callback hears the totals first, then every byte of every file.
    assert events[0] == TransferEvent("start", files_total=len(TREE), bytes_total=total)
    assert sum(e.bytes for e in events if e.kind == "bytes") == total
    assert max(e.bytes for e in events if e.kind == "bytes") <= CHUNK_SIZE
    assert sorted(e.path for e in events if e.kind == "file_done") == sorted(TREE)
    assert [e.kind for e in events].count("file_start") == len(TREE)

    listed = list(remote.filesets.files("default", "llama"))
    assert [f["path"] for f in listed] == sorted(TREE)
    assert {f["path"]: f["sha256"] for f in listed} == {p: sha(d) for p, d in TREE.items()}
    fileset = remote.filesets.get("default", "llama")
    assert (fileset["file_count"], fileset["total_size"]) == (len(TREE), total)
    manifest = "".join(f"{p}\t{len(d)}\t{sha(d)}\n" for p, d in sorted(TREE.items()))
    assert fileset["digest"] == sha(manifest.encode())

    target = tmp_path / "copy"
    events.clear()
    downloaded = remote.filesets.download_dir("default/llama", target, progress=events.append)
    assert (downloaded.downloaded, downloaded.skipped, downloaded.bytes) == (len(TREE), 0, total)
    assert downloaded.directory == target
    assert sorted(downloaded.paths) == sorted(target.resolve() / p for p in TREE)
    assert read_tree(target) == TREE  # byte-identical, nothing else left behind (no temporary files)
    assert events[0] == TransferEvent("start", files_total=len(TREE), bytes_total=total)
    assert sum(e.bytes for e in events if e.kind == "bytes") == total


def test_second_upload_skips_what_matches_and_sends_what_changed(remote: Client, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "model", TREE)
    remote.filesets.create("default", "llama")
    remote.filesets.upload_dir(source, "default/llama")
    digest = remote.filesets.get("default", "llama")["digest"]

    events: list[TransferEvent] = []
    again = remote.filesets.upload_dir(source, "default/llama", progress=events.append)
    assert (again.uploaded, again.skipped, again.bytes, again.files) == (0, len(TREE), 0, ())
    assert sorted(e.path for e in events if e.kind == "skipped") == sorted(TREE)
    assert events[-1] == TransferEvent("start", files_total=0, bytes_total=0)
    assert remote.filesets.get("default", "llama")["digest"] == digest

    (source / "config.json").write_bytes(b'{"hidden_size": 32, "num_hidden_layers": 2}')  # same size, new bytes
    (source / "weights/model-00002-of-00002.safetensors").write_bytes(os.urandom(100))
    (source / "weights/new.bin").write_bytes(b"new")
    changed = remote.filesets.upload_dir(source, "default/llama")
    assert (changed.uploaded, changed.skipped) == (3, len(TREE) - 2)
    assert sorted(f["path"] for f in changed.files) == [
        "config.json",
        "weights/model-00002-of-00002.safetensors",
        "weights/new.bin",
    ]
    assert remote.filesets.get("default", "llama")["digest"] != digest
    with remote.filesets.open("default/llama", "config.json") as stream:
        assert stream.read() == (source / "config.json").read_bytes()


def test_upload_dir_under_a_prefix(remote: Client, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "lora", {"adapter_config.json": b"{}", "adapter_model.safetensors": b"w" * 10})
    remote.filesets.create("default", "adapters")
    remote.filesets.upload_dir(source, "default/adapters", prefix="/run-1/")
    assert [f["path"] for f in remote.filesets.files("default", "adapters")] == [
        "run-1/adapter_config.json",
        "run-1/adapter_model.safetensors",
    ]
    assert remote.filesets.upload_dir(source, "default/adapters", prefix="run-1").skipped == 2
    assert remote.filesets.upload_dir(source, "default/adapters", prefix="run-2").uploaded == 2
    with pytest.raises(BadRequestError) as bad:
        remote.filesets.upload_dir(source, "default/adapters", prefix="../up")
    assert bad.value.error_code == "INVALID_PATH"
    with pytest.raises(NotFoundError) as missing:
        remote.filesets.upload_dir(source, "default/absent")
    assert missing.value.error_code == "FILESET_NOT_FOUND"
    with pytest.raises(NotADirectoryError):
        remote.filesets.upload_dir(source / "adapter_config.json", "default/adapters")


def test_download_dir_skips_matching_files_and_replaces_others(remote: Client, tmp_path: Path) -> None:
    remote.filesets.create("default", "llama")
    remote.filesets.upload_dir(write_tree(tmp_path / "model", TREE), "default/llama")
    target = tmp_path / "copy"
    remote.filesets.download_dir("default/llama", target)

    again = remote.filesets.download_dir("default/llama", target)
    assert (again.downloaded, again.skipped, again.bytes) == (0, len(TREE), 0)
    (target / "config.json").write_bytes(b"edited locally")
    (target / "tokenizer.json").unlink()
    repaired = remote.filesets.download_dir("default/llama", target)
    assert sorted(p.name for p in repaired.paths) == ["config.json", "tokenizer.json"]
    assert read_tree(target) == TREE

    weights = remote.filesets.download_dir("default/llama", tmp_path / "weights-only", path_prefix="weights/")
    assert sorted(read_tree(tmp_path / "weights-only")) == sorted(p for p in TREE if p.startswith("weights/"))
    assert weights.downloaded == 3
    empty = remote.filesets.download_dir("default/llama", tmp_path / "none", path_prefix="nothing/")
    assert (empty.downloaded, empty.skipped) == (0, 0)
    with pytest.raises(NotFoundError) as missing:
        remote.filesets.download_dir("default/absent", tmp_path / "absent")
    assert missing.value.error_code == "FILESET_NOT_FOUND"


def test_download_verifies_sha256_and_leaves_nothing_on_mismatch(
    live_server: str, admin_token: str, remote: Client, tmp_path: Path
) -> None:
    remote.filesets.create("default", "llama")
    remote.filesets.upload_dir(write_tree(tmp_path / "model", {"a.bin": b"payload", "b.bin": b"more"}), "default/llama")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.bin").write_bytes(b"old")
    with Client(base_url=live_server, token=admin_token, http_client=httpx.Client(transport=Corrupting())) as lying:
        with pytest.raises(ChecksumMismatchError) as exc:
            lying.filesets.download_dir("default/llama", tmp_path / "copy")
        assert exc.value.error_code == "CHECKSUM_MISMATCH"
        assert "a.bin" in exc.value.error_msg
        with lying.filesets.open("default/llama", "a.bin") as stream, pytest.raises(ChecksumMismatchError):
            stream.read()
    assert read_tree(tmp_path / "copy") == {"a.bin": b"old"}  # untouched, and no temporary file left


def test_download_refuses_paths_outside_the_directory(remote: Client, tmp_path: Path) -> None:
    base = tmp_path.resolve() / "dir"
    base.mkdir()
    for bad in ("../x", "/etc/passwd", "a/../../b", "a\\b", "", "a//b", "./a", "a/\x00"):
        with pytest.raises(UnsafePathError):
            _local_target(base, bad)
    assert _local_target(base, "weights/model.safetensors") == base / "weights" / "model.safetensors"

    # A symbolic link in the destination that points outside is not followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    (base / "weights").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError) as escaped:
        _local_target(base, "weights/model.safetensors")
    assert escaped.value.error_code == "UNSAFE_PATH"

    remote.filesets.create("default", "linked")
    remote.filesets.upload_dir(write_tree(tmp_path / "src", {"a.txt": b"a", "weights/w.bin": b"w"}), "default/linked")
    with pytest.raises(UnsafePathError):
        remote.filesets.download_dir("default/linked", base)
    assert list(outside.iterdir()) == []
    assert not (base / "a.txt").exists()  # every path is checked before anything is written

    # The server refuses a path that is both a file and a directory, so a download never meets one.
    remote.filesets.create("default", "clash")
    remote.filesets.upload_file(tmp_path / "src" / "a.txt", "default/clash", "x")
    with pytest.raises(ConflictError) as clash:
        remote.filesets.upload_file(tmp_path / "src" / "a.txt", "default/clash", "x/y")
    assert clash.value.error_code == "PATH_CONFLICT"


# --- open -------------------------------------------------------------------------------------------------------


def test_open_streams_whole_and_partial_reads(remote: Client, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 999)
    text = b"line one\nline two\n"
    remote.filesets.create("default", "blobs")
    remote.filesets.upload_dir(write_tree(tmp_path / "src", {"w.bin": data, "t.txt": text, "e": b""}), "default/blobs")

    with remote.filesets.open("default/blobs", "w.bin") as stream:
        assert isinstance(stream, io.BufferedIOBase)
        assert (stream.path, stream.size, stream.sha256) == ("w.bin", len(data), sha(data))
        assert stream.readable()
        assert stream.read(10) == data[:10]
        assert stream.tell() == 10
        assert stream.read(CHUNK_SIZE) == data[10 : 10 + CHUNK_SIZE]
        assert stream.read() == data[10 + CHUNK_SIZE :]
        assert stream.read() == b""
    assert stream.closed

    with remote.filesets.open("default/blobs", "w.bin") as stream:
        assert stream.read(8) == data[:8]  # then closed early: the rest is never fetched
        stream.seek(2 * CHUNK_SIZE + 5)  # a Range request from there
        assert stream.read(100) == data[2 * CHUNK_SIZE + 5 : 2 * CHUNK_SIZE + 105]
        assert stream.seek(-4, io.SEEK_END) == len(data) - 4
        assert stream.read() == data[-4:]
        stream.seek(0)
        assert stream.read() == data
        stream.seek(len(data) + 10)
        assert stream.read() == b""

    with remote.filesets.open("default/blobs", "t.txt") as stream:
        assert io.TextIOWrapper(stream, encoding="utf-8").readlines() == ["line one\n", "line two\n"]
    with remote.filesets.open("default/blobs", "e") as stream:
        assert (stream.size, stream.read()) == (0, b"")

    with pytest.raises(NotFoundError) as no_file:
        remote.filesets.open("default/blobs", "absent.bin")  # fails at open, not at the first read
    assert no_file.value.error_code == "FILE_NOT_FOUND"
    with pytest.raises(NotFoundError) as no_fileset:
        remote.filesets.open("default/absent", "w.bin")
    assert no_fileset.value.error_code == "FILESET_NOT_FOUND"
    with pytest.raises(BadRequestError) as bad:
        remote.filesets.open("default/blobs", "../w.bin")
    assert bad.value.error_code == "INVALID_PATH"


def test_open_seeks_even_when_ranges_are_dropped(
    live_server: str, admin_token: str, remote: Client, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 77)
    remote.filesets.create("default", "blobs")
    remote.filesets.upload_file(write_tree(tmp_path, {"w.bin": data}) / "w.bin", "default/blobs")
    proxy = NoRanges()
    with (
        Client(base_url=live_server, token=admin_token, http_client=httpx.Client(transport=proxy)) as client,
        client.filesets.open("default/blobs", "w.bin") as stream,
    ):
        stream.seek(CHUNK_SIZE + 3)
        assert stream.read(10) == data[CHUNK_SIZE + 3 : CHUNK_SIZE + 13]
        stream.seek(5)
        assert stream.read() == data[5:]
    assert proxy.dropped == 2


def test_open_in_process(sdk: Client, tmp_path: Path) -> None:
    sdk.filesets.create("default", "small")
    sdk.filesets.upload_file(write_tree(tmp_path, {"a.txt": b"hello world"}) / "a.txt", "default/small")
    with sdk.filesets.open("default/small", "a.txt") as stream:
        assert stream.read(5) == b"hello"
        assert stream.read() == b" world"
