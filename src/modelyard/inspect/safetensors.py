"""Reading safetensors headers without reading the tensors, from any source that can serve a byte range.

The file is treated as hostile: every length, offset, dtype and shape is checked against the file's size before it
is trusted, with the rules of the reference implementation (huggingface/safetensors, `Metadata::validate`). Only the
8-byte length and the header are read (two reads), unless the caller asks for a prefetch to save a round trip.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from modelyard.inspect.errors import InspectError

RangeReader = Callable[[int, int], bytes]
"""`read_range(start, length) -> bytes`: at most `length` bytes of the file from byte `start` (fewer only at EOF)."""

MAX_HEADER_SIZE: Final = 100 * 1024 * 1024
INDEX_FILE: Final = "model.safetensors.index.json"
SINGLE_FILE: Final = "model.safetensors"
MAX_INDEX_SIZE: Final = 64 * 1024 * 1024

PREFETCH: Final = 64 * 1024
"""A prefetch that brings the whole header of most LLM checkpoints in one read."""


@dataclass(frozen=True)
class Dtype:
    bits: int
    torch_name: str


# Every dtype of the format (the reference implementation's `Dtype` enum) with its width in bits and its name in
# torch (or in ml_dtypes where torch has none: the 6-bit and unpacked 4-bit floats).
DTYPES: Final[Mapping[str, Dtype]] = {
    "BOOL": Dtype(8, "bool"),
    "F4": Dtype(4, "float4_e2m1fn"),
    "F6_E2M3": Dtype(6, "float6_e2m3fn"),
    "F6_E3M2": Dtype(6, "float6_e3m2fn"),
    "U8": Dtype(8, "uint8"),
    "I8": Dtype(8, "int8"),
    "F8_E5M2": Dtype(8, "float8_e5m2"),
    "F8_E4M3": Dtype(8, "float8_e4m3fn"),
    "F8_E8M0": Dtype(8, "float8_e8m0fnu"),
    "F8_E4M3FNUZ": Dtype(8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": Dtype(8, "float8_e5m2fnuz"),
    "I16": Dtype(16, "int16"),
    "U16": Dtype(16, "uint16"),
    "F16": Dtype(16, "float16"),
    "BF16": Dtype(16, "bfloat16"),
    "I32": Dtype(32, "int32"),
    "U32": Dtype(32, "uint32"),
    "F32": Dtype(32, "float32"),
    "C64": Dtype(64, "complex64"),
    "F64": Dtype(64, "float64"),
    "I64": Dtype(64, "int64"),
    "U64": Dtype(64, "uint64"),
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    """The safetensors dtype, e.g. "BF16"; `DTYPES[dtype].torch_name` is torch's name for it."""
    shape: tuple[int, ...]
    numel: int


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: list[TensorInfo]
    """In the order of their data in the file."""
    metadata: dict[str, str] = field(default_factory=dict)
    header_size: int = 0
    """N, the length of the JSON header; the tensor data starts at byte 8 + N."""

    @property
    def num_parameters(self) -> int:
        return sum(t.numel for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        return next((t for t in self.tensors if t.name == name), None)


def parse_header(
    read_range: RangeReader, size: int, *, name: str = SINGLE_FILE, prefetch: int = 0
) -> SafetensorsHeader:
    """Read and check the header of the safetensors file `name` of `size` bytes; raise InspectError if it is bad.

    With `prefetch` > 0 the first read asks for the first 8 + `prefetch` bytes, so a header that fits needs no second
    read (worth it over HTTP, see `PREFETCH`); those bytes may include the start of the tensor data.
    """
    if size < 8:
        raise InspectError(f"{name} is {size} bytes long: too short to be a safetensors file (no 8-byte header length)")
    first = _read(read_range, 0, min(size, 8 + max(prefetch, 0)), name)
    if len(first) < 8:
        raise InspectError(f"{name} could not be read: got {len(first)} of its first 8 bytes")
    n = int.from_bytes(first[:8], "little")
    if n < 2:
        raise InspectError(
            f"{name} declares a header of {n} bytes: not a safetensors file (the header is a JSON object)"
        )
    if n > MAX_HEADER_SIZE:
        raise InspectError(
            f"{name} declares a header of {n} bytes, more than the {MAX_HEADER_SIZE // (1024 * 1024)} MiB limit: "
            "it is not a safetensors file or it is corrupt"
        )
    if 8 + n > size:
        raise InspectError(
            f"{name} declares a header of {n} bytes but the file is only {size} bytes long: "
            "it is truncated or not a safetensors file"
        )
    raw = first[8 : 8 + n]
    if len(raw) < n:
        raw += _read(read_range, len(first), 8 + n - len(first), name)
    if len(raw) != n:
        raise InspectError(f"{name} could not be read: got {len(raw)} of its {n} header bytes")
    document = _parse_json(raw, name, what="header")
    return _check_header(document, name=name, header_size=n, data_size=size - 8 - n)


def parse_header_file(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """`parse_header` for a local file, by seeking; the tensors are never read."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size

            def read_range(start: int, length: int) -> bytes:
                f.seek(start)
                return f.read(length)

            return parse_header(read_range, size, name=os.path.basename(name))
    except OSError as exc:
        raise InspectError(f"{name} could not be read: {exc.strerror or exc}") from exc


def count_parameters(headers: Iterable[SafetensorsHeader]) -> int:
    """The number of values in every tensor of the files (a sharded checkpoint passes one header per shard)."""
    return sum(h.num_parameters for h in headers)


def dominant_dtype(headers: Iterable[SafetensorsHeader]) -> str | None:
    """torch's name ("bfloat16", "float16", ...) of the dtype that holds the most values; None without tensors."""
    counts: Counter[str] = Counter()
    for header in headers:
        for t in header.tensors:
            counts[t.dtype] += t.numel
    if not counts or max(counts.values()) == 0:
        return None
    # Ties go to the wider dtype, then the name, so the answer never depends on the order of the files.
    best = max(counts, key=lambda d: (counts[d], DTYPES[d].bits, d))
    return DTYPES[best].torch_name


def shard_files(index: bytes | str | Mapping[str, Any], *, name: str = INDEX_FILE) -> list[str]:
    """The shard files an index (`model.safetensors.index.json`) names in its `weight_map`, sorted, each once.

    Shard names are relative to the index's directory. A name that is absolute, leaves the directory or is not a
    `.safetensors` file makes the index unusable (InspectError): it could otherwise point the reader anywhere.
    """
    document = _parse_json(index, name, what="index") if isinstance(index, bytes | str) else index
    if not isinstance(document, Mapping):
        raise InspectError(f"{name} is not a JSON object")
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, Mapping) or not weight_map:
        raise InspectError(f"{name} has no 'weight_map' object mapping tensor names to shard files")
    shards: set[str] = set()
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise InspectError(f"{name} maps tensor {tensor!r} to {shard!r}, which is not a file name")
        normal = posixpath.normpath(shard)
        if (
            shard.startswith("/")
            or "\\" in shard
            or normal.startswith("..")
            or normal != shard.removeprefix("./")
            or not shard.endswith(".safetensors")
        ):
            raise InspectError(
                f"{name} maps tensor {tensor!r} to {shard!r}: shard files must be .safetensors files "
                "inside the model's directory"
            )
        shards.add(normal)
    return sorted(shards)


def weight_files(paths: Collection[str], *, read_file: Callable[[str], bytes]) -> list[str]:
    """Which of a model directory's files hold its weights, as paths relative to the directory.

    The index `model.safetensors.index.json` wins when present (every shard it names must be there); otherwise
    `model.safetensors`; otherwise every `.safetensors` file at the top of the directory. `read_file(path)` returns
    a file's bytes and is only called for the index. An empty list means the model has no safetensors weights.
    """
    present = set(paths)
    if INDEX_FILE in present:
        shards = shard_files(read_file(INDEX_FILE), name=INDEX_FILE)
        missing = [s for s in shards if s not in present]
        if missing:
            listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InspectError(f"{INDEX_FILE} names shard files that are not in the model: {listed}")
        return shards
    if SINGLE_FILE in present:
        return [SINGLE_FILE]
    return sorted(p for p in present if "/" not in p and p.endswith(".safetensors"))


def _read(read_range: RangeReader, start: int, length: int, name: str) -> bytes:
    data = read_range(start, length)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"read_range must return bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > length:
        raise InspectError(f"{name} could not be read: asked for {length} bytes at {start}, got {len(data)}")
    return data


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _parse_json(raw: bytes | str, name: str, *, what: str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InspectError(f"{name}: the {what} is not UTF-8 text (byte {exc.start}): not a safetensors file") from exc
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise InspectError(f"{name}: the {what} is nested too deeply to be read") from exc
    except ValueError as exc:  # json.JSONDecodeError, duplicate keys, NaN, over-long integers
        raise InspectError(f"{name}: the {what} is not valid JSON ({exc})") from exc


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(document: Any, *, name: str, header_size: int, data_size: int) -> SafetensorsHeader:
    if not isinstance(document, dict):
        raise InspectError(f"{name}: the header is JSON but not an object: not a safetensors file")
    metadata = document.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InspectError(f"{name}: '__metadata__' must be an object of strings")

    placed: list[tuple[int, int, TensorInfo]] = []
    for tensor_name, entry in document.items():
        placed.append(_check_tensor(tensor_name, entry, name=name, data_size=data_size))
    placed.sort(key=lambda p: (p[0], p[1]))

    position = 0
    for begin, end, info in placed:
        if begin != position:
            raise InspectError(
                f"{name}: tensor {info.name!r} starts at byte {begin} of the data but the tensor before it ends at "
                f"{position}: tensors must follow each other with no gap and no overlap"
            )
        position = end
    if position != data_size:
        raise InspectError(
            f"{name}: the tensors cover {position} bytes but the file holds {data_size} bytes of data after the "
            "header: it is truncated or has bytes no tensor accounts for"
        )
    return SafetensorsHeader(tensors=[p[2] for p in placed], metadata=metadata, header_size=header_size)


def _check_tensor(tensor_name: str, entry: Any, *, name: str, data_size: int) -> tuple[int, int, TensorInfo]:
    where = f"{name}: tensor {tensor_name!r}"
    if not isinstance(entry, dict):
        raise InspectError(f"{where} is not an object with dtype, shape and data_offsets")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            raise InspectError(f"{where} has no {key!r}")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InspectError(f"{where} has the unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise InspectError(f"{where} has the shape {_short(shape)}: a shape is a list of non-negative integers")
    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise InspectError(f"{where} has the data_offsets {_short(offsets)}: expected [begin, end], two integers")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise InspectError(
            f"{where} has the data_offsets [{begin}, {end}], outside the {data_size} bytes of data in the file: "
            "the file is truncated or its header is wrong"
        )
    bits = DTYPES[dtype].bits
    # Bounded product: a hostile shape of huge dimensions must not build an enormous integer.
    limit = max(data_size * 8, 2**64)
    numel = 0 if 0 in shape else 1
    for d in shape if numel else ():
        numel *= d
        if numel > limit:
            raise InspectError(f"{where} has the shape {_short(shape)}, more values than the file can hold")
    if numel * bits % 8:
        raise InspectError(f"{where}: {numel} values of {dtype} ({bits} bits each) do not fill a whole number of bytes")
    if numel * bits // 8 != end - begin:
        raise InspectError(
            f"{where}: {numel} values of {dtype} take {numel * bits // 8} bytes but its data_offsets "
            f"[{begin}, {end}] span {end - begin}"
        )
    return begin, end, TensorInfo(name=tensor_name, dtype=dtype, shape=tuple(shape), numel=numel)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
