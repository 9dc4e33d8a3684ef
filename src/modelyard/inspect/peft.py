"""PEFT adapters as files: adapter_config.json read as hostile input, PEFT types mapped to NeMo's `finetuning_type`
values, and LoRA tensor names (`...layers.3.self_attn.q_proj.lora_A.weight`) taken apart."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeGuard

from modelyard.inspect.errors import InspectError
from modelyard.inspect.safetensors import TensorInfo

ADAPTER_CONFIG: Final = "adapter_config.json"
ADAPTER_WEIGHTS: Final = "adapter_model.safetensors"
MAX_ADAPTER_CONFIG_SIZE: Final = 4 * 1024 * 1024

FINETUNING_TYPES: Final = (
    "lora_merged",
    "all_weights",
    "last_layer",
    "top_layers",
    "gradual_unfreezing",
    "bias_only",
    "attention_only",
    "lora",
    "qlora",
    "adalora",
    "dora",
    "lora_plus",
    "prompt_tuning",
    "prefix_tuning",
    "p_tuning",
    "p_tuning_v2",
    "soft_prompt",
    "ppo",
    "dpo",
    "cdpo",
    "ipo",
    "orpo",
    "kto",
    "rrhf",
    "grpo",
)
"""NeMo's 25 `finetuning_type` values."""

TRAINING_OBJECTIVES: Final = frozenset({"ppo", "dpo", "cdpo", "ipo", "orpo", "kto", "rrhf", "grpo"})
"""Values that name how an adapter was trained, not what its files are: any PEFT adapter may carry them."""

FULL_WEIGHT_TYPES: Final = frozenset(
    {"lora_merged", "all_weights", "last_layer", "top_layers", "gradual_unfreezing", "bias_only", "attention_only"}
)
"""Values for fine-tunes saved as model weights, never as a PEFT adapter (no adapter_config.json)."""

# PEFT type -> the finetuning_type values its files can be registered as, the usual one first. LoRA+ and QLoRA
# change how a LoRA is trained, not its files; P-tuning v2 is PEFT's prefix tuning under another name, and NeMo
# also uses it for deep P-tuning.
PEFT_FINETUNING_TYPES: Final[Mapping[str, tuple[str, ...]]] = {
    "LORA": ("lora", "qlora", "lora_plus"),
    "ADALORA": ("adalora",),
    "PROMPT_TUNING": ("prompt_tuning", "soft_prompt"),
    "MULTITASK_PROMPT_TUNING": ("prompt_tuning", "soft_prompt"),
    "P_TUNING": ("p_tuning", "p_tuning_v2", "soft_prompt"),
    "PREFIX_TUNING": ("prefix_tuning", "p_tuning_v2", "soft_prompt"),
}
DORA_FINETUNING_TYPES: Final = ("dora",)

LORA_TYPES: Final = frozenset({"LORA", "ADALORA"})
PROMPT_LEARNING_TYPES: Final = frozenset({"PROMPT_TUNING", "MULTITASK_PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING"})

# What LoraConfig and AdaLoraConfig default to when adapter_config.json leaves a key out.
_LORA_RANK: Final = 8
_LORA_ALPHA: Final = 8
_LORA_DROPOUT: Final = 0.0

_MAX_NAME: Final = 4096
_MAX_ITEMS: Final = 100_000
_MAX_INT: Final = 2**40
_PEFT_TYPE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class AdapterConfig:
    """An adapter_config.json as PEFT reads it. Values that do not apply to the PEFT type are None."""

    peft_type: str
    """Upper case, as PEFT's `PeftType`: "LORA", "P_TUNING", ..."""
    task_type: str | None = None
    r: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float | None = None
    target_modules: list[str] | str | None = None
    """Module names (a module is targeted when its path is the name or ends with "." + the name) or, as a string,
    a regular expression PEFT matches against the whole module path ("all-linear" is PEFT's shorthand)."""
    base_model_name_or_path: str | None = None
    num_virtual_tokens: int | None = None
    token_dim: int | None = None
    num_layers: int | None = None
    layers_to_transform: list[int] | None = None
    modules_to_save: list[str] | None = None
    use_dora: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    """The whole file as parsed."""
    rank_pattern: dict[str, int] = field(default_factory=dict)
    """LoRA's per-module ranks (module name or pattern -> r). Empty for AdaLoRA, whose masks stay in `raw`."""
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    layers_pattern: list[str] | None = None
    num_transformer_submodules: int | None = None

    @property
    def is_lora(self) -> bool:
        return self.peft_type in LORA_TYPES

    @property
    def is_prompt_learning(self) -> bool:
        return self.peft_type in PROMPT_LEARNING_TYPES


@dataclass(frozen=True)
class LoraTensor:
    """One tensor of a LoRA adapter, taken apart from its name."""

    name: str
    """The tensor's name in the file."""
    module: str
    """The path of the base model's module it adapts, without PEFT's prefix: "model.layers.0.self_attn.q_proj"."""
    module_name: str
    """The last part of `module`: "q_proj"."""
    layer: int | None
    """The index of the transformer block the module is in, None for modules outside the blocks (embeddings)."""
    part: Literal["A", "B", "E", "magnitude"]
    """lora_A, lora_B, AdaLoRA's lora_E, or DoRA's lora_magnitude_vector."""
    embedding: bool
    """lora_embedding_A/B: an embedding's LoRA, whose A is (r, num_embeddings) and B (embedding_dim, r)."""
    bias: bool
    """The bias of lora_A/lora_B (LoraConfig's lora_bias), not its weight."""
    shape: tuple[int, ...]


def load_adapter_config(data: bytes | str, *, name: str = ADAPTER_CONFIG) -> AdapterConfig:
    """Parse and check an adapter_config.json; InspectError (naming `name`) when it is not one PEFT could load.

    Values PEFT fills when a key is missing are filled the same way (LoRA's r=8, lora_alpha=8, lora_dropout=0.0), so
    the result is what `PeftConfig.from_pretrained` would load. Unknown keys are kept in `raw` only."""
    if len(data) > MAX_ADAPTER_CONFIG_SIZE:
        raise InspectError(
            f"{name} is {len(data)} bytes, more than the {MAX_ADAPTER_CONFIG_SIZE // (1024 * 1024)} MiB "
            "an adapter config may be"
        )
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise InspectError(f"{name} is not UTF-8 text (byte {exc.start})") from exc
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise InspectError(f"{name} is nested too deeply to be read") from exc
    except ValueError as exc:  # JSONDecodeError, duplicate keys, NaN, over-long integers
        raise InspectError(f"{name} is not valid JSON: {exc}") from exc
    return adapter_config_from_dict(document, name=name)


def adapter_config_from_dict(document: Any, *, name: str = ADAPTER_CONFIG) -> AdapterConfig:
    """`load_adapter_config` for an already parsed document."""
    if not isinstance(document, dict):
        raise InspectError(f"{name} must hold a JSON object, not {_json_type(document)}")
    r = _Reader(document, name)

    peft_type = r.string("peft_type", required=True)
    assert peft_type is not None
    if not _PEFT_TYPE.fullmatch(peft_type):
        raise InspectError(f"{name}: 'peft_type' must be a PEFT type such as \"LORA\", not {_short(peft_type)}")
    peft_type = peft_type.upper()
    is_lora = peft_type in LORA_TYPES
    rank = r.integer("r", default=_LORA_RANK if is_lora else None)
    alpha = r.number("lora_alpha", default=_LORA_ALPHA if is_lora else None)
    dropout = r.number("lora_dropout", default=_LORA_DROPOUT if is_lora else None)
    if dropout is not None and not 0 <= dropout <= 1:
        raise InspectError(f"{name}: 'lora_dropout' must be between 0 and 1, not {_short(dropout)}")

    return AdapterConfig(
        peft_type=peft_type,
        task_type=r.string("task_type"),
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=r.names_or_pattern("target_modules"),
        base_model_name_or_path=r.string("base_model_name_or_path") or None,
        num_virtual_tokens=r.integer("num_virtual_tokens"),
        token_dim=r.integer("token_dim"),
        num_layers=r.integer("num_layers"),
        layers_to_transform=r.layers("layers_to_transform"),
        modules_to_save=r.names("modules_to_save"),
        use_dora=r.boolean("use_dora"),
        raw=document,
        rank_pattern=r.pattern("rank_pattern", integer=True) if peft_type == "LORA" else {},
        alpha_pattern=r.pattern("alpha_pattern", integer=False) if is_lora else {},
        layers_pattern=r.names("layers_pattern"),
        num_transformer_submodules=r.integer("num_transformer_submodules"),
    )


def finetuning_types_for(adapter: AdapterConfig) -> tuple[str, ...]:
    """The NeMo `finetuning_type` values this adapter's files can be registered as, the usual one first (empty for a
    PEFT type NeMo has no value for). The training objectives (dpo, ppo, ...) fit every adapter and are not listed."""
    if adapter.peft_type == "LORA" and adapter.use_dora:
        return DORA_FINETUNING_TYPES
    return PEFT_FINETUNING_TYPES.get(adapter.peft_type, ())


def default_finetuning_type(adapter: AdapterConfig) -> str | None:
    """The `finetuning_type` an adapter's files say it is: "lora", "dora", "p_tuning", ...; None when NeMo has none."""
    types = finetuning_types_for(adapter)
    return types[0] if types else None


_LORA_TENSOR: Final = re.compile(
    r"(?:base_model\.model\.)?(?P<module>.+?)\."
    r"(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_E|lora_magnitude_vector)"
    # The adapter's name is only in the key of a state dict that was not saved through PEFT (PEFT drops "default").
    r"(?:\.(?P<adapter>[^.]+)(?=\.(?:weight|bias)$))?"
    r"(?:\.(?P<param>weight|bias))?"
)
_PARTS: Final[Mapping[str, Literal["A", "B", "E", "magnitude"]]] = {
    "lora_A": "A",
    "lora_B": "B",
    "lora_embedding_A": "A",
    "lora_embedding_B": "B",
    "lora_E": "E",
    "lora_magnitude_vector": "magnitude",
}
LAYER_CONTAINERS: Final = ("layers", "h", "layer", "blocks", "block")
"""The names transformers gives the list of transformer blocks (`model.layers.3`, GPT-2's `transformer.h.3`)."""


def parse_lora_tensor(
    name: str, shape: tuple[int, ...] = (), *, layers_pattern: Iterable[str] | None = None
) -> LoraTensor | None:
    """Take a LoRA tensor's name apart; None when the name is not one of a LoRA adapter's tensors.

    Understood: `base_model.model.<module>.lora_A.weight` (and lora_B, with or without PEFT's prefix or an adapter
    name before `.weight`), `.lora_B.bias`, `.lora_embedding_A`/`_B`, AdaLoRA's `.lora_E`, DoRA's
    `.lora_magnitude_vector`. `layers_pattern` (adapter_config.json's) adds names of the list of blocks.
    """
    match = _LORA_TENSOR.fullmatch(name)
    if match is None:
        return None
    module = match["module"]
    kind = match["kind"]
    if module.startswith(".") or module.endswith(".") or ".." in module:
        return None
    return LoraTensor(
        name=name,
        module=module,
        module_name=module.rsplit(".", 1)[-1],
        layer=layer_index(module, layers_pattern),
        part=_PARTS[kind],
        embedding=kind.startswith("lora_embedding"),
        bias=match["param"] == "bias",
        shape=shape,
    )


def lora_tensors(
    tensors: Iterable[TensorInfo], *, layers_pattern: Iterable[str] | None = None
) -> tuple[list[LoraTensor], list[TensorInfo]]:
    """Split an adapter's tensors into its LoRA tensors and the others (modules_to_save copies, prompt embeddings)."""
    lora: list[LoraTensor] = []
    other: list[TensorInfo] = []
    patterns = list(layers_pattern or ())
    for tensor in tensors:
        parsed = parse_lora_tensor(tensor.name, tensor.shape, layers_pattern=patterns)
        if parsed is None:
            other.append(tensor)
        else:
            lora.append(parsed)
    return lora, other


_MAX_LAYER: Final = 10**9


def layer_index(module: str, layers_pattern: Iterable[str] | None = None) -> int | None:
    """The block index in a module path ("model.layers.3.mlp" -> 3, "transformer.h.0.attn" -> 0), None outside."""
    containers = {*LAYER_CONTAINERS, *(layers_pattern or ())}
    parts = module.split(".")
    for i, part in enumerate(parts[:-1]):
        following = parts[i + 1]
        if part in containers and following.isdigit() and following.isascii():
            # An absurd index is still an index past any model's depth; don't build a huge integer for it.
            return int(following) if len(following) <= 9 else _MAX_LAYER
    return None


class ModuleMatcher:
    """Module names or paths (target_modules, rank_pattern keys) matched against module paths as PEFT matches a plain
    name: the path is the name or ends with "." + the name. Keys that are regular expressions are never evaluated
    (a hostile one could take forever to match); see `is_plain_pattern`. Each match costs a few set lookups
    however many keys there are."""

    MAX_PARTS: Final = 32
    """Keys of more dotted parts than this match nothing (no model nests modules that deep)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._order: dict[str, int] = {}
        for i, key in enumerate(keys):
            if is_plain_pattern(key) and key.count(".") < self.MAX_PARTS:
                self._order.setdefault(key, i)
        self._depth = max((k.count(".") + 1 for k in self._order), default=0)

    def first(self, module: str) -> str | None:
        """The key that comes first among those that name `module`, or None."""
        parts = module.rsplit(".", self._depth) if self._depth else []
        found: str | None = None
        for n in range(1, min(self._depth, len(parts)) + 1):
            suffix = ".".join(parts[-n:])
            if suffix in self._order and (found is None or self._order[suffix] < self._order[found]):
                found = suffix
        return found

    def matches(self, module: str) -> bool:
        return self.first(module) is not None


def pattern_value(patterns: Mapping[str, Any], module: str) -> Any:
    """The value of the first key of `rank_pattern`/`alpha_pattern` that names `module` (see `ModuleMatcher`), or
    None. To look up many modules, make one `ModuleMatcher`."""
    key = ModuleMatcher(patterns).first(module)
    return patterns[key] if key is not None else None


def is_plain_pattern(key: str) -> bool:
    """Whether a `rank_pattern`/`target_modules` key is a module name or path rather than a regular expression."""
    return _PLAIN.fullmatch(key) is not None


_PLAIN: Final = re.compile(r"[\w.\-]+")


class _Reader:
    """Typed access to the keys of an adapter_config.json, each refusal naming the file and the key."""

    def __init__(self, document: dict[str, Any], name: str) -> None:
        self.document = document
        self.name = name

    def _fail(self, key: str, expected: str, value: Any) -> InspectError:
        return InspectError(f"{self.name}: '{key}' must be {expected}, not {_short(value)}")

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.document.get(key)
        if value is None:
            if required:
                raise InspectError(f"{self.name} has no '{key}': it is not a PEFT adapter config")
            return None
        if not isinstance(value, str) or len(value) > _MAX_NAME:
            raise self._fail(key, f"a string of at most {_MAX_NAME} characters", value)
        return value

    def integer(self, key: str, *, default: int | None = None) -> int | None:
        value = self.document.get(key)
        if value is None:
            return default
        if not _is_int(value) or not 1 <= value <= _MAX_INT:
            raise self._fail(key, "a positive integer", value)
        return value

    def number(self, key: str, *, default: float | None = None) -> float | None:
        value = self.document.get(key)
        if value is None:
            return default
        if not _is_number(value) or abs(value) > _MAX_INT:
            raise self._fail(key, "a number", value)
        return value

    def boolean(self, key: str) -> bool:
        value = self.document.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def names(self, key: str) -> list[str] | None:
        value = self.document.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or len(value) > _MAX_ITEMS
            or not all(isinstance(v, str) and 0 < len(v) <= _MAX_NAME for v in value)
        ):
            raise self._fail(key, "a list of module names", value)
        return list(value)

    def names_or_pattern(self, key: str) -> list[str] | str | None:
        value = self.document.get(key)
        if isinstance(value, str):
            if not value or len(value) > _MAX_NAME:
                raise self._fail(key, "a list of module names or a regular expression", value)
            return value
        return self.names(key)

    def layers(self, key: str) -> list[int] | None:
        value = self.document.get(key)
        if value is None:
            return None
        if _is_int(value):
            value = [value]
        if (
            not isinstance(value, list)
            or len(value) > _MAX_ITEMS
            or not all(_is_int(v) and 0 <= v <= _MAX_INT for v in value)
        ):
            raise self._fail(key, "a layer index or a list of layer indices", value)
        return list(value)

    def pattern(self, key: str, *, integer: bool) -> dict[str, Any]:
        value = self.document.get(key)
        if value is None:
            return {}
        check = _is_int if integer else _is_number
        if (
            not isinstance(value, dict)
            or len(value) > _MAX_ITEMS
            or not all(0 < len(k) <= _MAX_NAME and check(v) and 0 < abs(v) <= _MAX_INT for k, v in value.items())
        ):
            kind = "positive integers" if integer else "numbers"
            raise self._fail(key, f"an object mapping module names to {kind}", value)
        return dict(value)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
