"""Hugging Face repositories through huggingface_hub, against the loopback Hub of tests/fixtures/hub.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import hf_hub_download
from safetensors import safe_open
from safetensors.numpy import save

from modelyard.inspect import InspectError, count_parameters, dominant_dtype, parse_header
from modelyard.inspect.errors import HubUnavailableError
from modelyard.inspect.hub import (
    HubFile,
    HubSnapshot,
    file_sha256,
    open_file,
    parse_hf_uri,
    range_reader,
    read_range,
    resolve,
)
from tests.fixtures.hub import TOKEN, HubServer

CONFIG = json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64}).encode()
WEIGHTS = save(
    {
        "model.embed_tokens.weight": np.arange(1024 * 64, dtype=np.float16).reshape(1024, 64),
        "model.norm.weight": np.ones((64,), dtype=np.float32),
    }
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("hf://meta-llama/Llama-3.2-1B", ("meta-llama/Llama-3.2-1B", "main")),
        ("hf://Qwen/Qwen2.5-0.5B@v1.0", ("Qwen/Qwen2.5-0.5B", "v1.0")),
        ("hf://org/name@refs/pr/12", ("org/name", "refs/pr/12")),
        ("hf://org/my_model.v2@" + "a" * 40, ("org/my_model.v2", "a" * 40)),
    ],
)
def test_parse_hf_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_hf_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("meta-llama/Llama-3.2-1B", "looks like hf://org/name"),
        ("HF://org/name", "looks like hf://org/name"),
        ("s3://bucket/model", "looks like hf://org/name"),
        ("hf://gpt2", "is not a Hugging Face repository id"),
        ("hf://org/name/sub", "is not a Hugging Face repository id"),
        ("hf://org/", "is not a Hugging Face repository id"),
        ("hf:///name", "is not a Hugging Face repository id"),
        ("hf://org/na me", "is not a Hugging Face repository id"),
        ("hf://-org/name", "is not a Hugging Face repository id"),
        ("hf://org/name.", "is not a Hugging Face repository id"),
        ("hf://org/na--me", "is not a Hugging Face repository id"),
        ("hf://org/" + "n" * 100, "at most 96 characters"),
        ("hf://org/name@", "is not a revision"),
        ("hf://org/name@a@b", "is not a revision"),
        ("hf://org/name@../main", "is not a revision"),
        ("hf://org/name@main branch", "is not a revision"),
        ("hf://org/name@/main", "is not a revision"),
    ],
)
def test_parse_hf_uri_refuses(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"hf://|repository id|revision") as caught:
        parse_hf_uri(uri)
    assert message in str(caught.value)


def test_resolve_pins_the_branch_to_its_commit(hub_server: HubServer, hf_endpoint: str) -> None:
    sha = hub_server.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})

    snapshot = resolve("org/tiny", "main")

    assert snapshot == HubSnapshot(
        repo_id="org/tiny",
        revision="main",
        commit_sha=sha,
        files=[
            HubFile(path="config.json", size=len(CONFIG), sha256=None),
            HubFile(path="model.safetensors", size=len(WEIGHTS), sha256=hashlib.sha256(WEIGHTS).hexdigest()),
        ],
        endpoint=hf_endpoint,
    )
    assert snapshot.uri == f"hf://org/tiny@{sha}"
    assert resolve("org/tiny", sha).commit_sha == sha


def test_reads_stay_on_the_pinned_commit_after_the_branch_moves(hub_server: HubServer, hf_endpoint: str) -> None:
    old = hub_server.add_repo("org/tiny", {"config.json": CONFIG})
    snapshot = resolve("org/tiny")
    new = hub_server.add_repo("org/tiny", {"config.json": b'{"model_type": "qwen2"}'})

    assert read_range(snapshot, "config.json", 0, len(CONFIG)) == CONFIG
    assert resolve("org/tiny").commit_sha == new != old
    assert resolve("org/tiny", old).commit_sha == old
    resolve_paths = [r.path for r in hub_server.requests_for("/resolve/")]
    assert resolve_paths == [f"/org/tiny/resolve/{old}/config.json"]


def test_read_range(hub_server: HubServer, hf_endpoint: str) -> None:
    hub_server.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    snapshot = resolve("org/tiny")

    assert read_range(snapshot, "config.json", 5, 10) == CONFIG[5:15]
    assert read_range(snapshot, "model.safetensors", 100, 50) == WEIGHTS[100:150]
    assert read_range(snapshot, "config.json", len(CONFIG) - 3, 10) == CONFIG[-3:]
    assert read_range(snapshot, "config.json", len(CONFIG) + 5, 10) == b""
    assert read_range(snapshot, "config.json", 0, 0) == b""
    ranges = [r.headers.get("range") for r in hub_server.requests_for("/resolve/")]
    assert ranges[:2] == ["bytes=5-14", "bytes=100-149"]


def test_safetensors_header_over_http_without_the_tensors(
    hub_server: HubServer, hf_endpoint: str, tmp_path: Path
) -> None:
    hub_server.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    snapshot = resolve("org/tiny")
    weights = snapshot.file("model.safetensors")
    assert weights is not None
    assert weights.size is not None

    header = parse_header(range_reader(snapshot, weights.path), weights.size, name=weights.path)

    (tmp_path / "m.safetensors").write_bytes(WEIGHTS)
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        assert count_parameters([header]) == sum(int(f.get_tensor(k).size) for k in f.keys())  # noqa: SIM118
    assert dominant_dtype([header]) == "float16"
    # LFS files go through the redirect to the CDN, which served the length and the header, nothing more.
    cdn = hub_server.requests_for("/_cdn/")
    assert [r.headers["range"] for r in cdn] == ["bytes=0-7", f"bytes=8-{8 + header.header_size - 1}"]
    assert all(r.headers["range"].startswith("bytes=") for r in hub_server.requests_for("/resolve/"))


def test_open_file_streams_and_hashes(hub_server: HubServer, hf_endpoint: str) -> None:
    big = bytes(range(256)) * 10_000
    hub_server.add_repo("org/tiny", {"tokenizer.json": big, "model.safetensors": WEIGHTS})
    snapshot = resolve("org/tiny")

    with open_file(snapshot, "tokenizer.json", chunk_size=4096) as chunks:
        parts = list(chunks)

    assert b"".join(parts) == big
    assert len(parts) > 1
    assert file_sha256(snapshot, "tokenizer.json") == (len(big), hashlib.sha256(big).hexdigest())
    lfs = snapshot.file("model.safetensors")
    assert lfs is not None
    assert file_sha256(snapshot, "model.safetensors") == (lfs.size, lfs.sha256)


def test_explicit_endpoint_wins_over_hf_endpoint(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    sha = hub_server.add_repo("org/tiny", {"config.json": CONFIG})

    snapshot = resolve("org/tiny", endpoint=hub_server.url + "/")

    assert snapshot.commit_sha == sha
    assert snapshot.endpoint == hub_server.url


def test_unknown_repository(hub_server: HubServer, hf_endpoint: str) -> None:
    with pytest.raises(InspectError, match=r"Hugging Face repository 'org/missing' not found at http://127\.0\.0\.1"):
        resolve("org/missing", "main")


def test_unknown_revision(hub_server: HubServer, hf_endpoint: str) -> None:
    hub_server.add_repo("org/tiny", {"config.json": CONFIG})

    with pytest.raises(InspectError, match="Revision 'v9' not found in Hugging Face repository 'org/tiny'"):
        resolve("org/tiny", "v9")


def test_unknown_file(hub_server: HubServer, hf_endpoint: str) -> None:
    sha = hub_server.add_repo("org/tiny", {"config.json": CONFIG})
    snapshot = resolve("org/tiny")

    with pytest.raises(InspectError, match=f"File 'model.safetensors' not found in .*'org/tiny' at commit {sha}"):
        read_range(snapshot, "model.safetensors", 0, 8)
    with pytest.raises(InspectError, match="File 'nothing' not found"), open_file(snapshot, "nothing"):
        pass


def test_gated_repository_needs_a_token(
    hub_server: HubServer, hf_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_server.add_repo("org/gated", {"config.json": CONFIG, "model.safetensors": WEIGHTS}, gated=True)
    snapshot = resolve("org/gated")

    with pytest.raises(InspectError, match=r"'org/gated' is gated: .* set HF_TOKEN"):
        read_range(snapshot, "config.json", 0, 4)

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert read_range(snapshot, "config.json", 0, 4) == CONFIG[:4]
    assert read_range(snapshot, "model.safetensors", 0, 8) == WEIGHTS[:8]
    # The token goes to the Hub, never to the CDN the Hub redirects to.
    assert hub_server.requests_for("/resolve/")[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in hub_server.requests_for("/_cdn/")[-1].headers


def test_private_repository_needs_a_token(
    hub_server: HubServer, hf_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = hub_server.add_repo("org/private", {"config.json": CONFIG}, private=True)

    with pytest.raises(InspectError, match=r"'org/private' not found .* if it is private, set HF_TOKEN"):
        resolve("org/private")

    assert resolve("org/private", token=TOKEN).commit_sha == sha
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    snapshot = resolve("org/private")
    assert read_range(snapshot, "config.json", 0, 4) == CONFIG[:4]


def test_unreachable_hub_is_a_temporary_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    snapshot = HubSnapshot("org/tiny", "main", "a" * 40, [], "http://127.0.0.1:9")

    with pytest.raises(HubUnavailableError, match=r"Could not reach the Hugging Face Hub at http://127\.0\.0\.1:9"):
        resolve("org/tiny", timeout=5)
    with pytest.raises(HubUnavailableError, match=r"to read 'config\.json' from Hugging Face repository 'org/tiny'"):
        read_range(snapshot, "config.json", 0, 8, timeout=5)


def test_bad_endpoint_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "hub.internal:8080")

    with pytest.raises(InspectError, match=r"must be an http:// or https:// URL.*HF_ENDPOINT"):
        resolve("org/tiny")


def test_server_ignoring_ranges_still_gives_the_asked_bytes(hub_server: HubServer, hf_endpoint: str) -> None:
    hub_server.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    hub_server.ignore_range = True
    snapshot = resolve("org/tiny")

    assert read_range(snapshot, "model.safetensors", 1000, 24) == WEIGHTS[1000:1024]


def test_huggingface_hub_itself_downloads_from_the_fixture(
    hub_server: HubServer, hf_endpoint: str, tmp_path: Path
) -> None:
    sha = hub_server.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})

    path = hf_hub_download(
        "org/tiny", "model.safetensors", revision=sha, endpoint=hf_endpoint, cache_dir=tmp_path, token=False
    )

    assert Path(path).read_bytes() == WEIGHTS
