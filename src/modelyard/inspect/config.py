"""A model's `spec` (DESIGN.md section 7) from its Hugging Face config.json, and the checks that config must pass.

Field names differ between architectures (GPT-2's `n_embd` is Llama's `hidden_size`), so each spec key is looked up
through a table of the names transformers uses for it. Multimodal configs keep the language model in `text_config`
(Gemma 3, Llama 4, LLaVA, ...), which is read first. A value the config does not give is None: nothing is guessed,
except where the architecture itself defines it (kv heads = heads without grouped-query attention, head_dim =
hidden / heads, GPT-2-style MLPs 4 x hidden).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from modelyard.inspect.errors import InspectError
from modelyard.inspect.safetensors import DTYPES

SPEC_KEYS: Final = (
    "architecture",
    "family",
    "num_layers",
    "hidden_size",
    "num_attention_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "num_parameters",
    "dtype",
)

# Spec key -> the config names that hold it, first match wins (transformers' names and their `attribute_map`s).
ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "num_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head", "n_heads", "num_heads"),
    "num_kv_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv"),
    "head_dim": ("head_dim", "kv_channels"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim"),
    "vocab_size": ("vocab_size", "padded_vocab_size", "n_vocab"),
    "max_position_embeddings": (
        "max_position_embeddings",
        "n_positions",
        "max_sequence_length",
        "seq_length",
        "n_ctx",
        "max_seq_len",
    ),
}

# Where multimodal configs keep their language model.
TEXT_CONFIG_KEYS: Final = ("text_config", "llm_config", "language_config")

# Families whose MLP is 4 x hidden when the config leaves its size out (GPT-2's `n_inner: null`).
FFN_4X_FAMILIES: Final = frozenset({"gpt2", "gpt_bigcode", "gptj", "gpt_neo", "codegen", "falcon"})

DTYPE_KEYS: Final = ("torch_dtype", "dtype")
_DTYPE_ALIASES: Final = {"float": "float32", "half": "float16", "double": "float64", "bf16": "bfloat16"}
_KNOWN_DTYPES: Final = frozenset(d.torch_name for d in DTYPES.values())

MAX_DIMENSION: Final = 2**40
MAX_CONFIG_SIZE: Final = 16 * 1024 * 1024


def load_config(data: bytes | str, *, name: str = "config.json") -> dict[str, Any]:
    """Parse a config.json and check it with `validate_config`; InspectError (naming `name`) when it is unusable."""
    if len(data) > MAX_CONFIG_SIZE:
        raise InspectError(
            f"{name} is {len(data)} bytes, more than the {MAX_CONFIG_SIZE // (1024 * 1024)} MiB a config may be"
        )
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        config = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InspectError(f"{name} is not UTF-8 text (byte {exc.start})") from exc
    except RecursionError as exc:
        raise InspectError(f"{name} is nested too deeply to be read") from exc
    except ValueError as exc:
        raise InspectError(f"{name} is not valid JSON: {exc}") from exc
    validate_config(config, name=name)
    assert isinstance(config, dict)
    return config


def validate_config(config: Any, *, name: str = "config.json") -> None:
    """Raise InspectError when `config` is not a JSON object or holds values no model can have."""
    if not isinstance(config, dict):
        raise InspectError(f"{name} must hold a JSON object, not {_json_type(config)}")
    for key in TEXT_CONFIG_KEYS:
        nested = config.get(key)
        if nested is not None and not isinstance(nested, dict):
            raise InspectError(f"{name}: '{key}' must be an object, not {_json_type(nested)}")
    sections = _sections(config)

    architectures = config.get("architectures")
    if architectures is not None and (
        not isinstance(architectures, list) or not all(isinstance(a, str) and a for a in architectures)
    ):
        raise InspectError(f"{name}: 'architectures' must be a list of class names, not {_short(architectures)}")
    for section in sections:
        model_type = section.get("model_type")
        if model_type is not None and (not isinstance(model_type, str) or not model_type):
            raise InspectError(f"{name}: 'model_type' must be a non-empty string, not {_short(model_type)}")
        for key in DTYPE_KEYS:
            value = section.get(key)
            if value is not None and not isinstance(value, str):
                raise InspectError(f"{name}: '{key}' must be a string such as \"bfloat16\", not {_short(value)}")

    values: dict[str, int] = {}
    for spec_key, aliases in ALIASES.items():
        found = _first(sections, aliases)
        if found is None:
            continue
        key, value = found
        if not _is_int(value) or not 1 <= value <= MAX_DIMENSION:
            raise InspectError(f"{name}: '{key}' must be a positive integer, not {_short(value)}")
        values[spec_key] = value

    hidden, heads = values.get("hidden_size"), values.get("num_attention_heads")
    if "head_dim" not in values and hidden is not None and heads is not None and hidden % heads:
        raise InspectError(
            f"{name}: hidden size {hidden} is not divisible by the {heads} attention heads and no head_dim is given"
        )
    kv_heads = values.get("num_kv_heads")
    if kv_heads is not None and heads is not None and (kv_heads > heads or heads % kv_heads):
        raise InspectError(
            f"{name}: {heads} attention heads cannot be shared by {kv_heads} key/value heads "
            "(the attention heads must be a multiple of the key/value heads)"
        )


def model_spec(config: Mapping[str, Any], *, num_parameters: int | None, dtype: str | None) -> dict[str, Any]:
    """The spec keys of DESIGN.md section 7, each a value from the config (or the weights) or None.

    `num_parameters` and `dtype` come from the safetensors headers when the model has them (`count_parameters`,
    `dominant_dtype`); without a `dtype`, the config's `torch_dtype` (or `dtype`) is used. Never raises for a
    mapping: values of the wrong type are None (call `validate_config` first to refuse such a config).
    """
    sections = _sections(config)
    section = sections[0]

    ints: dict[str, int | None] = {key: _positive(_first(sections, aliases)) for key, aliases in ALIASES.items()}
    hidden, heads = ints["hidden_size"], ints["num_attention_heads"]

    if ints["num_kv_heads"] is None:
        ints["num_kv_heads"] = _implicit_kv_heads(section, heads)
    if ints["head_dim"] is None and hidden is not None and heads is not None and hidden % heads == 0:
        ints["head_dim"] = hidden // heads
    text_family = section.get("model_type")
    if ints["intermediate_size"] is None and hidden is not None and text_family in FFN_4X_FAMILIES:
        ints["intermediate_size"] = 4 * hidden

    # The top level names the model as a whole (LlavaForConditionalGeneration, "llava"), not its language part.
    outer_first = sections[::-1]
    architectures: list[Any] = next(
        (s["architectures"] for s in outer_first if isinstance(s.get("architectures"), list)), []
    )
    architecture = architectures[0] if architectures and isinstance(architectures[0], str) else None
    family = next((s["model_type"] for s in outer_first if isinstance(s.get("model_type"), str)), None)

    return {
        "architecture": architecture,
        "family": family,
        "num_layers": ints["num_layers"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_kv_heads": ints["num_kv_heads"],
        "head_dim": ints["head_dim"],
        "intermediate_size": ints["intermediate_size"],
        "vocab_size": ints["vocab_size"],
        "max_position_embeddings": ints["max_position_embeddings"],
        "num_parameters": num_parameters if _is_int(num_parameters) and num_parameters >= 0 else None,
        "dtype": normalize_dtype(dtype) or _config_dtype(sections),
    }


def normalize_dtype(value: Any) -> str | None:
    """torch's name for a dtype written as "bfloat16", "torch.bfloat16", "half", ...; None if it names no dtype."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower().removeprefix("torch.")
    name = _DTYPE_ALIASES.get(name, name)
    return name if name in _KNOWN_DTYPES else None


def _sections(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The language model's section first (a multimodal config's `text_config`), then the top level."""
    for key in TEXT_CONFIG_KEYS:
        nested = config.get(key)
        if isinstance(nested, Mapping):
            return [nested, config]
    return [config]


def _first(sections: list[Mapping[str, Any]], aliases: tuple[str, ...]) -> tuple[str, Any] | None:
    for section in sections:
        for key in aliases:
            value = section.get(key)
            if value is not None:
                return key, value
    return None


def _positive(found: tuple[str, Any] | None) -> int | None:
    if found is None:
        return None
    value = found[1]
    return value if _is_int(value) and 1 <= value <= MAX_DIMENSION else None


def _implicit_kv_heads(section: Mapping[str, Any], heads: int | None) -> int | None:
    # ChatGLM groups its queries only when `multi_query_attention` is on; Falcon-7B and StarCoder use one kv head.
    groups = section.get("multi_query_group_num")
    if section.get("multi_query_attention") is True and _is_int(groups) and groups > 0:
        return int(groups)
    if section.get("multi_query") is True and heads is not None:
        return 1
    return heads


def _config_dtype(sections: list[Mapping[str, Any]]) -> str | None:
    for section in sections:
        for key in DTYPE_KEYS:
            dtype = normalize_dtype(section.get(key))
            if dtype is not None:
                return dtype
    return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
