"""Reading what a model or adapter is made of without loading it: config.json, adapter_config.json, safetensors
headers (by byte range), and Hugging Face repositories pinned to a commit; and the adapter compatibility check."""

from __future__ import annotations

from modelyard.inspect.compat import CHECK_NAMES, Check, CompatibilityReport, check_compatibility, refusal_detail
from modelyard.inspect.config import SPEC_KEYS, load_config, model_spec, normalize_dtype, validate_config
from modelyard.inspect.errors import HubUnavailableError, InspectError
from modelyard.inspect.peft import (
    FINETUNING_TYPES,
    AdapterConfig,
    LoraTensor,
    default_finetuning_type,
    finetuning_types_for,
    load_adapter_config,
    lora_tensors,
    parse_lora_tensor,
)
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
    "CHECK_NAMES",
    "DTYPES",
    "FINETUNING_TYPES",
    "INDEX_FILE",
    "SPEC_KEYS",
    "AdapterConfig",
    "Check",
    "CompatibilityReport",
    "HubUnavailableError",
    "InspectError",
    "LoraTensor",
    "RangeReader",
    "SafetensorsHeader",
    "TensorInfo",
    "check_compatibility",
    "count_parameters",
    "default_finetuning_type",
    "dominant_dtype",
    "finetuning_types_for",
    "load_adapter_config",
    "load_config",
    "lora_tensors",
    "model_spec",
    "normalize_dtype",
    "parse_header",
    "parse_header_file",
    "parse_lora_tensor",
    "refusal_detail",
    "shard_files",
    "validate_config",
    "weight_files",
]
