"""Safetensors headers read by byte range: files written by the real safetensors library, and hostile ones."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save, save_file

from modelyard.inspect import (
    InspectError,
    SafetensorsHeader,
    count_parameters,
    dominant_dtype,
    parse_header,
    parse_header_file,
    shard_files,
    weight_files,
)
from modelyard.inspect.safetensors import MAX_HEADER_SIZE, PREFETCH

NUMPY_TO_SAFETENSORS = {
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
    "int64": "I64",
    "bool": "BOOL",
    "uint8": "U8",
}


def tensors_of(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What the safetensors library itself reads: name -> (dtype, shape)."""
    with safe_open(str(path), framework="numpy") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    return {name: (NUMPY_TO_SAFETENSORS[str(t.dtype)], tuple(t.shape)) for name, t in tensors.items()}


def numel_of(path: Path) -> int:
    with safe_open(str(path), framework="numpy") as f:
        return sum(int(f.get_tensor(name).size) for name in f.keys())  # noqa: SIM118


class Reader:
    """A byte-range reader over bytes that remembers what was asked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, length: int) -> bytes:
        self.calls.append((start, length))
        return self.data[start : start + length]


def parse(data: bytes, name: str = "model.safetensors") -> SafetensorsHeader:
    return parse_header(Reader(data), len(data), name=name)


def raw_file(header: Any, data: bytes = b"", *, declared: int | None = None) -> bytes:
    """A file with this header (a dict, turned into JSON, or raw bytes) and data area."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if declared is None else declared) + body + data


def test_header_matches_what_safetensors_reads(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "model.embed_tokens.weight": np.zeros((32, 8), dtype=np.float16),
            "model.layers.0.mlp.up_proj.weight": np.ones((16, 8), dtype=np.float32),
            "model.layers.0.input_layernorm.weight": np.ones((8,), dtype=np.float64),
            "position_ids": np.arange(5, dtype=np.int64),
            "mask": np.ones((2, 3), dtype=np.bool_),
            "quant": np.ones((4,), dtype=np.uint8),
            "scalar": np.array(3.0, dtype=np.float32),
            "empty": np.zeros((0, 4), dtype=np.float16),
        },
        str(path),
        metadata={"format": "pt"},
    )

    header = parse_header_file(path)

    assert {t.name: (t.dtype, t.shape) for t in header.tensors} == tensors_of(path)
    assert header.metadata == {"format": "pt"}
    assert header.num_parameters == numel_of(path) == 32 * 8 + 16 * 8 + 8 + 5 + 6 + 4 + 1 + 0
    assert count_parameters([header]) == numel_of(path)
    assert header.tensor("scalar") is not None
    assert header.tensor("scalar").shape == ()  # type: ignore[union-attr]
    assert header.header_size == int.from_bytes(path.read_bytes()[:8], "little")


def test_only_the_header_is_read() -> None:
    data = save({"big": np.zeros((512, 1024), dtype=np.float32), "small": np.zeros((4,), dtype=np.float32)})
    reader = Reader(data)

    header = parse_header(reader, len(data))

    assert header.num_parameters == 512 * 1024 + 4
    assert reader.calls == [(0, 8), (8, header.header_size)]


def test_prefetch_saves_a_read_when_the_header_fits() -> None:
    small = save({"a": np.zeros((1024, 64), dtype=np.float16)})
    large = save({f"layer.{i}.weight": np.zeros((1,), dtype=np.float16) for i in range(3000)})
    small_reader, large_reader = Reader(small), Reader(large)

    parse_header(small_reader, len(small), prefetch=PREFETCH)
    header = parse_header(large_reader, len(large), prefetch=PREFETCH)

    assert small_reader.calls == [(0, 8 + PREFETCH)]
    assert len(header.tensors) == 3000
    assert large_reader.calls == [(0, 8 + PREFETCH), (8 + PREFETCH, header.header_size - PREFETCH)]


def test_sharded_checkpoint(tmp_path: Path) -> None:
    shards = {
        "model-00001-of-00002.safetensors": {"a": np.zeros((10, 10), dtype=np.float16)},
        "model-00002-of-00002.safetensors": {"b": np.zeros((3,), dtype=np.float16), "c": np.zeros((7,), np.float32)},
    }
    for shard, tensors in shards.items():
        save_file(tensors, str(tmp_path / shard))
    index = {
        "metadata": {"total_size": 10 * 10 * 2 + 3 * 2 + 7 * 4},
        "weight_map": {name: shard for shard, tensors in shards.items() for name in tensors},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    paths = [p.name for p in tmp_path.iterdir()] + ["config.json", "consolidated.safetensors"]

    files = weight_files(paths, read_file=lambda p: (tmp_path / p).read_bytes())

    assert files == sorted(shards)
    headers = [parse_header_file(tmp_path / f) for f in files]
    assert count_parameters(headers) == sum(numel_of(tmp_path / f) for f in files) == 110
    assert dominant_dtype(headers) == "float16"


def test_weight_files_without_an_index() -> None:
    def no_read(path: str) -> bytes:
        raise AssertionError(path)

    assert weight_files(["model.safetensors", "x.safetensors"], read_file=no_read) == ["model.safetensors"]
    assert weight_files(["b.safetensors", "a.safetensors", "sub/c.safetensors", "d.bin"], read_file=no_read) == [
        "a.safetensors",
        "b.safetensors",
    ]
    assert weight_files(["config.json", "pytorch_model.bin"], read_file=no_read) == []


def test_weight_files_refuses_an_index_naming_missing_shards() -> None:
    index = json.dumps({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}).encode()

    with pytest.raises(InspectError, match=r"names shard files that are not in the model: model-2\.safetensors"):
        weight_files(["model.safetensors.index.json", "model-1.safetensors"], read_file=lambda _: index)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b"{}", "no 'weight_map'"),
        (json.dumps({"weight_map": {"a": "../secrets.safetensors"}}).encode(), "inside the model's directory"),
        (json.dumps({"weight_map": {"a": "/etc/x.safetensors"}}).encode(), "inside the model's directory"),
        (json.dumps({"weight_map": {"a": "sub/../../x.safetensors"}}).encode(), "inside the model's directory"),
        (json.dumps({"weight_map": {"a": "model.bin"}}).encode(), "must be .safetensors files"),
        (json.dumps({"weight_map": {"a": 3}}).encode(), "which is not a file name"),
    ],
)
def test_shard_files_refuses_bad_indexes(index: bytes, message: str) -> None:
    with pytest.raises(InspectError, match=r"model\.safetensors\.index\.json") as caught:
        shard_files(index)
    assert message in str(caught.value)


def test_shard_files_lists_each_shard_once() -> None:
    index = {"weight_map": {"a": "m-2.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors"}}
    assert shard_files(index) == ["m-1.safetensors", "m-2.safetensors"]
    assert shard_files(json.dumps(index)) == ["m-1.safetensors", "m-2.safetensors"]


def test_dominant_dtype_counts_parameters_not_tensors() -> None:
    header = parse(
        save({f"norm{i}": np.zeros((2,), dtype=np.float32) for i in range(5)} | {"w": np.zeros((64,), np.float16)})
    )

    assert dominant_dtype([header]) == "float16"
    assert dominant_dtype([]) is None
    assert dominant_dtype([parse(save({"e": np.zeros((0,), dtype=np.float16)}))]) is None


def test_dtypes_numpy_cannot_write() -> None:
    header = {
        "w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "q": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [8, 12]},
        "f4": {"dtype": "F4", "shape": [4], "data_offsets": [12, 14]},
    }

    parsed = parse(raw_file(header, b"\0" * 14))

    assert [(t.name, t.dtype, t.numel) for t in parsed.tensors] == [
        ("w", "BF16", 4),
        ("q", "F8_E4M3", 4),
        ("f4", "F4", 4),
    ]
    assert dominant_dtype([parsed]) == "bfloat16"


def valid() -> bytes:
    return save({"a": np.zeros((2, 3), dtype=np.float32), "b": np.zeros((4,), dtype=np.float16)})


def tensor(dtype: str = "F32", shape: Any = (2,), offsets: Any = (0, 8)) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape, "data_offsets": list(offsets)}


HOSTILE: list[tuple[str, bytes, str]] = [
    ("empty file", b"", "0 bytes long: too short"),
    ("shorter than the length", b"\x10\x00\x00", "3 bytes long: too short"),
    ("header length 0", raw_file(b"", declared=0), "declares a header of 0 bytes"),
    ("header length 1", raw_file(b"{", declared=1), "declares a header of 1 bytes"),
    ("huge header length", struct.pack("<Q", 2**63) + b"{}", "more than the 100 MiB limit"),
    ("header length past the limit", struct.pack("<Q", MAX_HEADER_SIZE + 1) + b"{}", "more than the 100 MiB limit"),
    ("header length past EOF", raw_file(b"{}", declared=1000), "declares a header of 1000 bytes but the file is only"),
    ("truncated data", valid()[:-3], "outside the 29 bytes of data in the file: the file is truncated"),
    ("trailing bytes", valid() + b"\0" * 4, "the tensors cover 32 bytes but the file holds 36 bytes"),
    ("not JSON", raw_file(b"this is not json"), "the header is not valid JSON"),
    ("not UTF-8", raw_file(b'{"\xff": 1}'), "the header is not UTF-8"),
    ("a JSON list", raw_file(b"[1, 2, 3]"), "the header is JSON but not an object"),
    ("NaN", raw_file(b'{"a": NaN}'), "not valid JSON"),
    ("deep nesting", raw_file(b"[" * 50_000 + b"]" * 50_000), "model.safetensors"),
    ("a duplicate tensor", raw_file(b'{"a": 1, "a": 2}'), "the key 'a' appears twice"),
    ("metadata not strings", raw_file({"__metadata__": {"epoch": 3}}), "'__metadata__' must be an object of strings"),
    ("entry not an object", raw_file({"a": [1]}), "tensor 'a' is not an object"),
    ("no dtype", raw_file({"a": {"shape": [1], "data_offsets": [0, 4]}}), "tensor 'a' has no 'dtype'"),
    ("unknown dtype", raw_file({"a": tensor(dtype="F128")}, b"\0" * 8), "unknown dtype 'F128'"),
    ("lowercase dtype", raw_file({"a": tensor(dtype="f32")}, b"\0" * 8), "unknown dtype 'f32'"),
    ("negative dimension", raw_file({"a": tensor(shape=[-2])}, b"\0" * 8), "a shape is a list of non-negative"),
    ("fractional dimension", raw_file({"a": tensor(shape=[2.0])}, b"\0" * 8), "a shape is a list of non-negative"),
    ("boolean dimension", raw_file({"a": tensor(shape=[True])}, b"\0" * 4), "a shape is a list of non-negative"),
    ("shape not a list", raw_file({"a": tensor(shape="2")}, b"\0" * 8), "a shape is a list of non-negative"),
    ("huge shape", raw_file({"a": tensor(shape=[2**62, 2**62])}, b"\0" * 8), "more values than the file can hold"),
    ("one offset", raw_file({"a": tensor(offsets=[0])}, b"\0" * 8), "expected [begin, end]"),
    ("offsets past the data", raw_file({"a": tensor(offsets=[0, 800])}, b"\0" * 8), "outside the 8 bytes of data"),
    ("offsets backwards", raw_file({"a": tensor(offsets=[8, 0])}, b"\0" * 8), "outside the 8 bytes of data"),
    ("size disagrees with shape", raw_file({"a": tensor(offsets=[0, 4])}, b"\0" * 4), "take 8 bytes but its"),
    (
        "gap between tensors",
        raw_file({"a": tensor(offsets=[0, 8]), "b": tensor(offsets=[12, 20])}, b"\0" * 20),
        "tensor 'b' starts at byte 12 of the data but the tensor before it ends at 8",
    ),
    (
        "overlapping tensors",
        raw_file({"a": tensor(offsets=[0, 8]), "b": tensor(offsets=[4, 12])}, b"\0" * 12),
        "no gap and no overlap",
    ),
    (
        "data not starting at 0",
        raw_file({"a": tensor(offsets=[4, 12])}, b"\0" * 12),
        "starts at byte 4 of the data but the tensor before it ends at 0",
    ),
    ("half a byte", raw_file({"a": tensor(dtype="F4", shape=[3], offsets=[0, 2])}, b"\0" * 2), "whole number of bytes"),
]


@pytest.mark.parametrize(("case", "data", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_files_are_refused(case: str, data: bytes, message: str) -> None:
    with pytest.raises(InspectError) as caught:
        parse(data, name="shard-3.safetensors")

    assert "shard-3.safetensors" in str(caught.value)
    assert message.replace("model.safetensors", "shard-3.safetensors") in str(caught.value)


def test_a_reader_returning_less_than_the_header_is_refused() -> None:
    data = valid()

    with pytest.raises(InspectError, match="could not be read"):
        parse_header(lambda start, length: data[start : start + length][:5], len(data), name="x.safetensors")


def test_a_missing_local_file_is_an_inspect_error(tmp_path: Path) -> None:
    with pytest.raises(InspectError, match=r"nothing\.safetensors could not be read"):
        parse_header_file(tmp_path / "nothing.safetensors")


def test_the_safetensors_library_agrees_on_the_hostile_files(tmp_path: Path) -> None:
    """Cross-check: what we refuse, the reference implementation refuses too."""
    for _, data, _ in HOSTILE:
        path = tmp_path / "x.safetensors"
        path.write_bytes(data)
        with pytest.raises(Exception):  # noqa: B017, PT011 - the library's error types vary between versions
            _library_reads(path)


def _library_reads(path: Path) -> None:
    with safe_open(str(path), framework="numpy") as f:
        for name in f.keys():  # noqa: SIM118
            f.get_slice(name).get_shape()
