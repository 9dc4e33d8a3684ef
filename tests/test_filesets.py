"""Filesets and their files, on the local store and on S3 (moto's server on loopback), on both databases."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.fileset import service
from modelyard.fileset.service import collect_garbage
from modelyard.storage import create_store
from tests.fixtures.app import MakeUser, error_shape
from tests.fixtures.databases import count_rows
from tests.fixtures.storage import s3_keys

FS = "/v1/workspaces/default/filesets"


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, db: Database) -> Settings:
    common = {"home": tmp_path / "home", "database_url": db.url, "worker": False}
    if request.param == "local":
        return Settings(**common)  # type: ignore[arg-type]
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = f"run-{secrets.token_hex(6)}"
    return Settings(**common, storage_url=f"s3://modelyard-test/{prefix}", s3_endpoint_url=endpoint)  # type: ignore[arg-type]


class Stored:
    """What the store holds: blob objects and leftover temporary uploads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _keys(self, area: str) -> list[str]:
        url = self.settings.storage_url
        if url.startswith("s3://"):
            prefix = urlparse(url).path.strip("/")
            return s3_keys(self.settings.s3_endpoint_url, f"{prefix}/{area}/")
        root = Path(urlparse(url).path) / area
        return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def blobs(self) -> list[str]:
        return self._keys("blobs")

    def temporary(self) -> list[str]:
        return self._keys("tmp")


@pytest.fixture
def stored(settings: Settings) -> Stored:
    return Stored(settings)


def _put(client: TestClient | httpx.Client, fs: str, path: str, data: bytes) -> httpx.Response:
    return client.put(f"{FS}/{fs}/-/{path}", content=data, headers={"content-type": "application/octet-stream"})


def test_fileset_crud(client: TestClient, settings: Settings) -> None:
    kind = "s3" if settings.storage_url.startswith("s3://") else "local"
    r = client.post(FS, json={"name": "llama-weights", "description": "weights", "purpose": "model"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["workspace"] == "default"
    assert body["storage"] == kind
    assert body["purpose"] == "model"
    assert body["file_count"] == 0
    assert body["digest"] == hashlib.sha256(b"").hexdigest()
    assert body["id"].startswith("fileset-")

    r = client.post(FS, json={"name": "llama-weights"})
    assert r.status_code == 409
    body = error_shape(r)
    assert body["error_code"] == "FILESET_ALREADY_EXISTS"
    assert body["error_msg"] == "Fileset 'default/llama-weights' already exists"

    client.post(FS, json={"name": "data", "purpose": "dataset", "storage": {"type": kind}})
    assert [f["name"] for f in client.get(FS, params={"purpose": "dataset"}).json()["data"]] == ["data"]
    assert len(client.get(FS, params={"storage": kind}).json()["data"]) == 2
    assert [f["name"] for f in client.get(FS, params={"name_prefix": "lla"}).json()["data"]] == ["llama-weights"]
    assert client.get(FS, params={"purpose": "images"}).status_code == 422

    etag = client.get(f"{FS}/data").headers["etag"]
    r = client.patch(
        f"{FS}/data", json={"description": "training data", "purpose": "generic"}, headers={"If-Match": etag}
    )
    assert r.status_code == 200
    assert (r.json()["description"], r.json()["purpose"]) == ("training data", "generic")
    assert client.patch(f"{FS}/data", json={"description": "x"}, headers={"If-Match": etag}).status_code == 412
    assert client.patch(f"{FS}/data", json={"name": "renamed"}).status_code == 422

    assert client.delete(f"{FS}/data").status_code == 204
    r = client.get(f"{FS}/data")
    assert r.status_code == 404
    assert error_shape(r)["error_msg"] == "Fileset 'default/data' not found in workspace 'default'"


def test_other_storage_kind_is_400(client: TestClient, settings: Settings) -> None:
    other = "local" if settings.storage_url.startswith("s3://") else "s3"
    r = client.post(FS, json={"name": "x", "storage": other})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "STORAGE_NOT_CONFIGURED"
    assert client.post(FS, json={"name": "x", "storage": "ngc"}).status_code == 422


def test_membership_rules(client: TestClient, make_user: MakeUser) -> None:
    client.post(FS, json={"name": "private"})
    _put(client, "private", "a.txt", b"hello")
    outsider = make_user("olga")
    assert outsider.get(f"{FS}/private").status_code == 404
    assert outsider.get(f"{FS}/private/-/a.txt").status_code == 404
    assert _put(outsider, "private", "b.txt", b"x").status_code == 404
    viewer = make_user("victor", workspaces={"default": "viewer"})
    assert viewer.get(f"{FS}/private/-/a.txt").content == b"hello"
    r = _put(viewer, "private", "b.txt", b"x")
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "INSUFFICIENT_ROLE"
    assert viewer.post(FS, json={"name": "mine"}).status_code == 403
    assert viewer.delete(f"{FS}/private/-/a.txt").status_code == 403
    assert client.get(f"{FS}/private").json()["file_count"] == 1


def test_upload_list_download_delete_round_trip(client: TestClient, stored: Stored, db: Database) -> None:
    client.post(FS, json={"name": "model"})
    files = {
        "config.json": b'{"hidden_size": 64}',
        "weights/model-00001.safetensors": os.urandom(3 * 1024 * 1024 + 17),
        "weights/model-00002.safetensors": os.urandom(1024),
        "empty.txt": b"",
        "unicod\u00e9 name.txt": "caf\u00e9".encode(),
    }
    for path, data in files.items():
        r = _put(client, "model", path, data)
        assert r.status_code == 201, r.text
        assert r.json() == {**r.json(), "path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'

    listed = client.get(f"{FS}/model/files").json()
    assert [f["path"] for f in listed["data"]] == sorted(files)
    assert {f["path"]: f["size"] for f in listed["data"]} == {p: len(d) for p, d in files.items()}
    weights = client.get(f"{FS}/model/files", params={"path": "weights/"}).json()["data"]
    assert [f["path"] for f in weights] == ["weights/model-00001.safetensors", "weights/model-00002.safetensors"]

    for path, data in files.items():
        r = client.get(f"{FS}/model/-/{path}")
        assert r.status_code == 200
        assert r.content == data
        assert r.headers["content-length"] == str(len(data))
        assert r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert r.headers["accept-ranges"] == "bytes"

    fileset = client.get(f"{FS}/model").json()
    manifest = "".join(f"{p}\t{len(d)}\t{hashlib.sha256(d).hexdigest()}\n" for p, d in sorted(files.items()))
    assert fileset["digest"] == hashlib.sha256(manifest.encode()).hexdigest()
    assert fileset["file_count"] == len(files)
    assert fileset["total_size"] == sum(len(d) for d in files.values())

    # Replacing a file answers 200 and changes the digest.
    r = _put(client, "model", "config.json", b'{"hidden_size": 128}')
    assert r.status_code == 200
    assert client.get(f"{FS}/model").json()["digest"] != fileset["digest"]
    assert client.get(f"{FS}/model/-/config.json").content == b'{"hidden_size": 128}'

    assert client.delete(f"{FS}/model/-/empty.txt").status_code == 204
    r = client.get(f"{FS}/model/-/empty.txt")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "FILE_NOT_FOUND"
    assert client.delete(f"{FS}/model/-/empty.txt").status_code == 404
    assert client.get(f"{FS}/model").json()["file_count"] == len(files) - 1
    assert stored.temporary() == []

    actions = [e["action"] for e in client.get("/v1/workspaces/default/events", params={"sort": "at"}).json()["data"]]
    assert actions.count("fileset.file_uploaded") == len(files) + 1
    assert actions[-1] == "fileset.file_deleted"


def test_same_bytes_are_stored_once(client: TestClient, stored: Stored) -> None:
    data = os.urandom(100_000)
    client.post(FS, json={"name": "a"})
    client.post(FS, json={"name": "b"})
    before = len(stored.blobs())
    for fs, path in [("a", "x.bin"), ("a", "copy/x.bin"), ("b", "x.bin")]:
        assert _put(client, fs, path, data).status_code == 201
    assert len(stored.blobs()) == before + 1


def test_ranges(client: TestClient) -> None:
    data = bytes(range(256)) * 4
    client.post(FS, json={"name": "r"})
    _put(client, "r", "blob.bin", data)
    _put(client, "r", "empty.bin", b"")
    url = f"{FS}/r/-/blob.bin"
    cases = {"bytes=0-9": (0, 9), "bytes=1000-": (1000, 1023), "bytes=-5": (1019, 1023), "bytes=10-5000": (10, 1023)}
    for header, (first, last) in cases.items():
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == data[first : last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/1024"
        assert r.headers["content-length"] == str(last - first + 1)
    for header in ("bytes=1024-", "bytes=5000-6000", "bytes=-0"):
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["content-range"] == "bytes */1024"
        assert error_shape(r)["error_code"] == "RANGE_NOT_SATISFIABLE"
    assert client.get(f"{FS}/r/-/empty.bin", headers={"Range": "bytes=0-"}).status_code == 416
    # Several ranges, or nonsense: the whole file (RFC 9110 lets a server ignore Range).
    for header in ("bytes=0-1,5-6", "pages=1-2", "bytes=9-3"):
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 200
        assert r.content == data
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "1024"
    assert head.content == b""
    etag = head.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "%2E%2E/x",
        "..%2Fx",
        "%2Fetc/passwd",
        "a/%2E%2E/%2E%2E/b",
        "a/..%2F..%2Fb",
        "a%5Cb",
        "a%00b",
        "%2E",
        "a/%2E%2E",
        "x" * 5000,
        "%09a",
        "a/" + "y" * 300,
    ],
)
def test_bad_paths_are_400_and_write_nothing(client: TestClient, stored: Stored, db: Database, path: str) -> None:
    client.post(FS, json={"name": "safe"})
    blobs = stored.blobs()
    r = _put(client, "safe", path, b"payload")
    assert r.status_code == 400, r.text
    assert error_shape(r)["error_code"] == "INVALID_PATH"
    assert count_rows(db, "fileset_files") == 0
    assert stored.blobs() == blobs
    assert stored.temporary() == []
    assert client.get(f"{FS}/safe/-/{path}").status_code == 400


def test_raw_dangerous_urls(client: TestClient, stored: Stored, db: Database) -> None:
    client.post(FS, json={"name": "safe"})
    # The absolute path arrives as an empty segment plus "etc/passwd".
    r = _put(client, "safe", "/etc/passwd", b"x")
    assert r.status_code == 400
    # An empty path has no route to an upload.
    assert _put(client, "safe", "", b"x").status_code in (400, 404, 405)
    assert count_rows(db, "fileset_files") == 0


def test_dot_segments_are_normalised(client: TestClient) -> None:
    client.post(FS, json={"name": "n"})
    r = _put(client, "n", "a/./b//c.txt", b"c")
    assert r.status_code == 201
    assert r.json()["path"] == "a/b/c.txt"


def test_upload_over_limit_is_413_and_writes_nothing(
    settings: Settings, db: Database, admin_token: str, stored: Stored
) -> None:
    from modelyard.app import create_app

    small = settings.model_copy(update={"max_upload_bytes": 10_000})
    app = create_app(small, db=db, start_worker=False)
    with TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {admin_token}"}) as c:
        c.post(FS, json={"name": "lim"})
        r = _put(c, "lim", "big.bin", os.urandom(10_001))
        assert r.status_code == 413
        assert error_shape(r)["error_code"] == "UPLOAD_TOO_LARGE"

        def chunked() -> Iterator[bytes]:
            for _ in range(20):
                yield os.urandom(1000)

        r = c.put(f"{FS}/lim/-/chunked.bin", content=chunked())
        assert r.status_code == 413
        assert _put(c, "lim", "ok.bin", os.urandom(10_000)).status_code == 201
    assert count_rows(db, "fileset_files") == 1
    assert stored.temporary() == []


def test_upload_into_missing_fileset_is_404(client: TestClient, stored: Stored) -> None:
    r = _put(client, "nope", "a.txt", b"x")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "FILESET_NOT_FOUND"
    assert stored.temporary() == []


def test_client_disconnect_leaves_nothing(
    live_server: str, admin_token: str, client: TestClient, stored: Stored, db: Database
) -> None:
    client.post(FS, json={"name": "cut"})
    host, port = urlparse(live_server).hostname, urlparse(live_server).port
    assert host
    assert port
    request = (
        f"PUT {FS}/cut/-/partial.bin HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {admin_token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request)
        for _ in range(80):  # 10 MiB of the promised 50, then hang up
            sock.sendall(os.urandom(128 * 1024))
    # The server notices the disconnect, drops the temporary object and records nothing.
    import time

    deadline = time.monotonic() + 15
    while stored.temporary() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored.temporary() == []
    assert count_rows(db, "fileset_files") == 0
    assert client.get(f"{FS}/cut").json()["file_count"] == 0
    # The server still works.
    assert _put(client, "cut", "whole.bin", b"ok").status_code == 201


def test_delete_refused_while_referenced_unless_forced(client: TestClient) -> None:
    client.post(FS, json={"name": "used"})

    def checker(_session: object, fileset: object) -> list[str]:
        return ["adapter 'default/lora-1'"] if getattr(fileset, "name", "") == "used" else []

    service.register_reference_checker(checker)
    try:
        r = client.delete(f"{FS}/used")
        assert r.status_code == 409
        body = error_shape(r)
        assert body["error_code"] == "FILESET_IN_USE"
        assert "adapter 'default/lora-1'" in body["error_msg"]
        assert client.get(f"{FS}/used").status_code == 200
        assert client.delete(f"{FS}/used", params={"force": "true"}).status_code == 204
    finally:
        service.REFERENCE_CHECKERS.remove(checker)
    event = client.get("/v1/workspaces/default/events", params={"action": "fileset.deleted"}).json()["data"][0]
    assert event["changes"]["force"] is True
    assert event["changes"]["referenced_by"] == ["adapter 'default/lora-1'"]


def test_workspace_with_filesets_needs_cascade(client: TestClient, db: Database) -> None:
    client.post("/v1/workspaces", json={"name": "proj"})
    client.post("/v1/workspaces/proj/filesets", json={"name": "f"})
    client.put("/v1/workspaces/proj/filesets/f/-/a.txt", content=b"a")
    r = client.delete("/v1/workspaces/proj")
    assert r.status_code == 409
    assert "1 filesets" in error_shape(r)["error_msg"]
    assert client.delete("/v1/workspaces/proj", params={"cascade": "true"}).status_code == 204
    assert count_rows(db, "filesets") == 0
    assert count_rows(db, "fileset_files") == 0


def test_garbage_collection_removes_only_unreferenced_blobs(
    client: TestClient, db: Database, settings: Settings, stored: Stored
) -> None:
    client.post(FS, json={"name": "gc"})
    _put(client, "gc", "keep.bin", b"keep me")
    _put(client, "gc", "drop.bin", b"drop me")
    _put(client, "gc", "drop-copy.bin", b"drop me")
    assert len(stored.blobs()) == 2
    client.delete(f"{FS}/gc/-/drop.bin")
    store = create_store(settings)
    assert collect_garbage(db, store, grace_seconds=0) == 0  # still referenced by drop-copy.bin
    client.delete(f"{FS}/gc/-/drop-copy.bin")
    assert collect_garbage(db, store, grace_seconds=3600) == 0  # within the grace period
    assert collect_garbage(db, store, grace_seconds=0) == 1
    assert len(stored.blobs()) == 1
    assert client.get(f"{FS}/gc/-/keep.bin").content == b"keep me"
    # The same bytes uploaded again are stored again.
    _put(client, "gc", "back.bin", b"drop me")
    assert client.get(f"{FS}/gc/-/back.bin").content == b"drop me"


def test_files_page_token(client: TestClient) -> None:
    client.post(FS, json={"name": "many"})
    paths = sorted(f"dir{i % 3}/file-{i:03d}.txt" for i in range(25))
    for p in paths:
        _put(client, "many", p, p.encode())
    seen: list[str] = []
    params: dict[str, object] = {"page_size": 7}
    while True:
        page = client.get(f"{FS}/many/files", params=params).json()
        seen += [f["path"] for f in page["data"]]
        if not page["next_page_token"]:
            break
        params = {"page_size": 7, "page_token": page["next_page_token"]}
    assert seen == paths


@pytest.mark.slow
def test_large_file_round_trip(live_server: str, admin_token: str, client: TestClient, tmp_path: Path) -> None:
    size = 300 * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        block = os.urandom(1024 * 1024)
        for i in range(size // len(block)):
            chunk = block[:-4] + i.to_bytes(4, "big")
            digest.update(chunk)
            handle.write(chunk)
    client.post(FS, json={"name": "big"})
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=live_server, headers=headers, timeout=300) as http, source.open("rb") as handle:
        r = http.put(f"{FS}/big/-/big.bin", content=handle)
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == digest.hexdigest()
        back = hashlib.sha256()
        received = 0
        with http.stream("GET", f"{FS}/big/-/big.bin") as stream:
            assert stream.headers["content-length"] == str(size)
            for chunk in stream.iter_bytes():
                back.update(chunk)
                received += len(chunk)
    assert received == size
    assert back.hexdigest() == digest.hexdigest()


def test_conditional_upload_and_delete(client: TestClient, db: Database) -> None:
    client.post(FS, json={"name": "cond"})
    first = _put(client, "cond", "a.txt", b"one")
    etag = first.headers["etag"]
    r = client.put(f"{FS}/cond/-/a.txt", content=b"two", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert error_shape(r)["error_code"] == "PRECONDITION_FAILED"
    r = client.put(f"{FS}/cond/-/a.txt", content=b"two", headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert client.get(f"{FS}/cond/-/a.txt").content == b"one"
    r = client.put(f"{FS}/cond/-/a.txt", content=b"two", headers={"If-Match": etag})
    assert r.status_code == 200
    assert client.put(f"{FS}/cond/-/new.txt", content=b"x", headers={"If-Match": etag}).status_code == 412
    assert client.put(f"{FS}/cond/-/new.txt", content=b"x", headers={"If-None-Match": "*"}).status_code == 201
    assert client.delete(f"{FS}/cond/-/a.txt", headers={"If-Match": etag}).status_code == 412
    assert client.delete(f"{FS}/cond/-/a.txt", headers={"If-Match": r.headers["etag"]}).status_code == 204


def test_a_path_is_not_both_file_and_directory(client: TestClient) -> None:
    client.post(FS, json={"name": "tree"})
    assert _put(client, "tree", "weights", b"file").status_code == 201
    r = _put(client, "tree", "weights/part1.bin", b"x")
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "PATH_CONFLICT"
    assert _put(client, "tree", "dir/a.bin", b"x").status_code == 201
    assert _put(client, "tree", "dir", b"x").status_code == 409
    assert _put(client, "tree", "dir2", b"x").status_code == 201
    assert [f["path"] for f in client.get(f"{FS}/tree/files").json()["data"]] == ["dir/a.bin", "dir2", "weights"]
