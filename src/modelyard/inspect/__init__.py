"""Reading what a model or adapter is made of without loading it: config.json, safetensors headers (by byte range),
and Hugging Face repositories pinned to a commit. The adapter compatibility check builds on these."""

from __future__ import annotations

from modelyard.inspect.config import SPEC_KEYS, load_config, model_spec, normalize_dtype, validate_config
from modelyard.inspect.errors import HubUnavailableError, InspectError
from modelyard.inspect.safetensors import (
    DTYPES,
    INDEX_FILE,
    RangeReader,
    SafetensorsHeader,
    TensorInfo,
    count_parameters,
    dominant_dtype,
    parse_header,
    parse_header_file,
    shard_files,
    weight_files,
)

__all__ = [
    "DTYPES",
    "INDEX_FILE",
    "SPEC_KEYS",
    "HubUnavailableError",
    "InspectError",
    "RangeReader",
    "SafetensorsHeader",
    "TensorInfo",
    "count_parameters",
    "dominant_dtype",
    "load_config",
    "model_spec",
    "normalize_dtype",
    "parse_header",
    "parse_header_file",
    "shard_files",
    "validate_config",
    "weight_files",
]
