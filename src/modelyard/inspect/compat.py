"""The compatibility check of an adapter against its base model: adapter_config.json and the tensor shapes of the
adapter's safetensors files against the base's config.json, before anyone tries to serve it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeGuard

from modelyard.inspect.config import TEXT_CONFIG_KEYS, model_spec
from modelyard.inspect.peft import (
    ADAPTER_WEIGHTS,
    FINETUNING_TYPES,
    FULL_WEIGHT_TYPES,
    TRAINING_OBJECTIVES,
    AdapterConfig,
    LoraTensor,
    ModuleMatcher,
    finetuning_types_for,
    is_plain_pattern,
    lora_tensors,
)
from modelyard.inspect.safetensors import TensorInfo

CHECK_NAMES: Final = (
    "peft_type",
    "rank",
    "alpha",
    "target_modules",
    "tensor_shapes",
    "layer_indices",
    "base_model_name",
)

Status = Literal["compatible", "incompatible", "unknown"]

NOT_APPLICABLE: Final = "not applicable"
NOT_CHECKED: Final = "not checked"


@dataclass(frozen=True)
class Check:
    name: str
    """One of `CHECK_NAMES`."""
    ok: bool
    message: str


@dataclass(frozen=True)
class CompatibilityReport:
    """What `check_compatibility` found.

    `checks` always holds the seven checks of `CHECK_NAMES`, in that order. A check that does not apply to the
    adapter (rank for P-tuning) is ok with a message that starts "not applicable"; one that could not be made for
    lack of information (no base config, a model family whose modules modelyard does not know) is ok with a message
    that starts "not checked". `status` is "incompatible" when a check failed (checks of the files alone, such as a
    rank that disagrees with adapter_config.json, fail without a base config too), else "unknown" when something was
    not checked (always so without a base config), else "compatible".
    """

    status: Status
    checks: list[Check]
    """One per name of `CHECK_NAMES`, in that order."""
    warnings: list[str] = field(default_factory=list)
    """Things a person should know that do not make the adapter incompatible."""
    lora_config: dict[str, Any] | None = None
    """The caller's lora_config with rank, alpha, dropout and target_modules filled from the files where it gave
    none (None values count as not given); None for adapters that are not LoRA when the caller gave none."""

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: `{status, checks: [{name, ok, message}], warnings, lora_config}`."""
        return {
            "status": self.status,
            "checks": [{"name": c.name, "ok": c.ok, "message": c.message} for c in self.checks],
            "warnings": list(self.warnings),
            "lora_config": self.lora_config,
        }


def refusal_detail(report: CompatibilityReport) -> list[dict[str, Any]]:
    """The `detail` of a 422 ADAPTER_INCOMPATIBLE answer: one entry per failing check (DESIGN.md section 7)."""
    return [{"loc": ["compatibility", c.name], "msg": c.message, "type": "compatibility"} for c in report.failures]


# ---------------------------------------------------------------------------------------------------------------
# What a base model is made of: per family, the modules LoRA can target and the dimensions of their weights.


@dataclass(frozen=True)
class ModuleShape:
    """A module of the base and which of the base's dimensions (keys of `base_dimensions`) its weight maps between.

    A LoRA on it has lora_A of shape (r, in) and lora_B of shape (out, r), also for an embedding (in = its number
    of embeddings) and for GPT-2's Conv1D (PEFT takes the features from the weight, not its layout). None: that side
    is not checked (an MoE expert's width, a router's number of experts)."""

    in_dim: str | None
    out_dim: str | None
    parent: str | None = None
    """The parent module's name, when the name alone is ambiguous (GPT-2 has attn.c_proj and mlp.c_proj)."""
    embedding: bool = False


def _linear(in_dim: str | None, out_dim: str | None, parent: str | None = None) -> ModuleShape:
    return ModuleShape(in_dim, out_dim, parent)


def _embedding(rows: str = "vocab") -> ModuleShape:
    return ModuleShape(rows, "hidden", embedding=True)


ModuleTable = Mapping[str, tuple[ModuleShape, ...]]

_ATTENTION: Final[ModuleTable] = {
    "q_proj": (_linear("hidden", "q"),),
    "k_proj": (_linear("hidden", "kv"),),
    "v_proj": (_linear("hidden", "kv"),),
    "o_proj": (_linear("q", "hidden"),),
    "embed_tokens": (_embedding(),),
    "lm_head": (_linear("hidden", "vocab"),),
}
_LLAMA: Final[ModuleTable] = {
    **_ATTENTION,
    "gate_proj": (_linear("hidden", "inter"),),
    "up_proj": (_linear("hidden", "inter"),),
    "down_proj": (_linear("inter", "hidden"),),
}
_GPT2: Final[ModuleTable] = {
    "c_attn": (_linear("hidden", "qkv"),),
    "c_proj": (_linear("q", "hidden", "attn"), _linear("inter", "hidden", "mlp")),
    "c_fc": (_linear("hidden", "inter"),),
    "wte": (_embedding(),),
    "wpe": (_embedding("positions"),),
    "lm_head": (_linear("hidden", "vocab"),),
}
_NEOX: Final[ModuleTable] = {
    "query_key_value": (_linear("hidden", "qkv"),),
    "dense": (_linear("q", "hidden"),),
    "dense_h_to_4h": (_linear("hidden", "inter"),),
    "dense_4h_to_h": (_linear("inter", "hidden"),),
}
_QWEN_MOE: Final[ModuleTable] = {
    **_ATTENTION,
    "gate": (_linear("hidden", None),),
    "shared_expert_gate": (_linear("hidden", None),),
    "gate_proj": (_linear("hidden", None),),
    "up_proj": (_linear("hidden", None),),
    "down_proj": (_linear(None, "hidden"),),
}

FAMILY_MODULES: Final[Mapping[str, ModuleTable]] = {
    **dict.fromkeys(
        (
            "llama",
            "mistral",
            "ministral",
            "qwen2",
            "qwen3",
            "gemma",
            "gemma2",
            "gemma3_text",
            "olmo",
            "olmo2",
            "granite",
            "cohere",
            "cohere2",
            "stablelm",
            "internlm",
            "smollm3",
            "helium",
        ),
        _LLAMA,
    ),
    "nemotron": {
        **_ATTENTION,
        "up_proj": (_linear("hidden", "inter"),),
        "down_proj": (_linear("inter", "hidden"),),
    },
    "starcoder2": {
        **_ATTENTION,
        "c_fc": (_linear("hidden", "inter"),),
        "c_proj": (_linear("inter", "hidden"),),
    },
    "phi3": {
        "qkv_proj": (_linear("hidden", "qkv"),),
        "o_proj": (_linear("q", "hidden"),),
        "gate_up_proj": (_linear("hidden", "2inter"),),
        "down_proj": (_linear("inter", "hidden"),),
        "embed_tokens": (_embedding(),),
        "lm_head": (_linear("hidden", "vocab"),),
    },
    "phi": {
        **{k: v for k, v in _ATTENTION.items() if k != "o_proj"},
        "dense": (_linear("q", "hidden"),),
        "fc1": (_linear("hidden", "inter"),),
        "fc2": (_linear("inter", "hidden"),),
    },
    "gpt2": _GPT2,
    "gpt_bigcode": _GPT2,
    "gpt_neox": {**_NEOX, "embed_in": (_embedding(),), "embed_out": (_linear("hidden", "vocab"),)},
    "falcon": {**_NEOX, "word_embeddings": (_embedding(),), "lm_head": (_linear("hidden", "vocab"),)},
    # Mixture-of-experts models: the attention is checked; expert widths and router sizes are not.
    "mixtral": {
        **_ATTENTION,
        "gate": (_linear("hidden", None),),
        "w1": (_linear("hidden", "inter"),),
        "w3": (_linear("hidden", "inter"),),
        "w2": (_linear("inter", "hidden"),),
    },
    **dict.fromkeys(("qwen2_moe", "qwen3_moe"), _QWEN_MOE),
}
"""Per model family (config.json's `model_type` of the language model), the modules LoRA can target."""

# Module path parts of the non-language parts of multimodal models: their layers have other dimensions.
_OTHER_TOWERS: Final = frozenset(
    {
        "vision_tower",
        "vision_model",
        "vision_encoder",
        "visual",
        "vision",
        "multi_modal_projector",
        "mm_projector",
        "image_encoder",
        "audio_tower",
        "audio_encoder",
        "audio_model",
    }
)
_MULTIMODAL_KEYS: Final = ("vision_config", "audio_config", *TEXT_CONFIG_KEYS)


@dataclass(frozen=True)
class Dimension:
    value: int
    description: str
    """How a person reads it: "the base's hidden size is 64"."""


def base_dimensions(config: Mapping[str, Any]) -> dict[str, Dimension]:
    """The dimensions of a base model that module weights map between, by key: hidden, q (attention heads x
    head_dim), kv (key/value heads x head_dim), qkv, inter, 2inter, vocab, positions. A key is missing when the
    config does not give what it needs."""
    spec = model_spec(config, num_parameters=None, dtype=None)
    hidden, heads, kv_heads, head_dim = (
        spec["hidden_size"],
        spec["num_attention_heads"],
        spec["num_kv_heads"],
        spec["head_dim"],
    )
    inter, vocab, positions = spec["intermediate_size"], spec["vocab_size"], spec["max_position_embeddings"]
    dims: dict[str, Dimension] = {}
    if hidden:
        dims["hidden"] = Dimension(hidden, f"the base's hidden size is {hidden}")
    if heads and head_dim:
        q = heads * head_dim
        dims["q"] = Dimension(q, f"the base's {heads} attention heads x head_dim {head_dim} make {q}")
        if kv_heads:
            kv = kv_heads * head_dim
            dims["kv"] = Dimension(kv, f"the base's {kv_heads} key/value heads x head_dim {head_dim} make {kv}")
            qkv = q + 2 * kv
            dims["qkv"] = Dimension(
                qkv, f"the base's {heads} query + 2 x {kv_heads} key/value heads x head_dim {head_dim} make {qkv}"
            )
    if inter:
        dims["inter"] = Dimension(inter, f"the base's intermediate size is {inter}")
        dims["2inter"] = Dimension(2 * inter, f"twice the base's intermediate size is {2 * inter}")
    if vocab:
        dims["vocab"] = Dimension(vocab, f"the base's vocabulary size is {vocab}")
    if positions:
        dims["positions"] = Dimension(positions, f"the base's context length is {positions}")
    return dims


def base_family(config: Mapping[str, Any]) -> str | None:
    """The `model_type` of a base's language model: a multimodal config's `text_config` first, then the top."""
    for key in TEXT_CONFIG_KEYS:
        nested = config.get(key)
        if isinstance(nested, Mapping) and isinstance(nested.get("model_type"), str):
            return str(nested["model_type"])
    family = config.get("model_type")
    return family if isinstance(family, str) else None


@dataclass(frozen=True)
class _Base:
    family: str | None
    modules: ModuleTable | None
    dims: dict[str, Dimension]
    num_layers: int | None
    multimodal: bool

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> _Base:
        family = base_family(config)
        return cls(
            family=family,
            modules=FAMILY_MODULES.get(family) if family else None,
            dims=base_dimensions(config),
            num_layers=model_spec(config, num_parameters=None, dtype=None)["num_layers"],
            multimodal=any(isinstance(config.get(k), Mapping) for k in _MULTIMODAL_KEYS),
        )

    def shape_of(self, module: str) -> ModuleShape | None:
        """The shape of a module of the base by its path; None when the family's table does not know it."""
        if self.modules is None:
            return None
        parts = module.split(".")
        candidates = self.modules.get(parts[-1], ())
        if len(candidates) == 1:
            return candidates[0]
        parent = parts[-2] if len(parts) > 1 else None
        return next((c for c in candidates if c.parent == parent), None)


# ---------------------------------------------------------------------------------------------------------------
# The check.


def check_compatibility(
    adapter: AdapterConfig,
    tensors: Sequence[TensorInfo],
    base_config: Mapping[str, Any] | None,
    *,
    finetuning_type: str,
    lora_config: Mapping[str, Any] | None = None,
    base_model_name: str | Sequence[str] | None = None,
) -> CompatibilityReport:
    """Check an adapter against its base model and say how.

    `tensors`: every tensor of the adapter's safetensors files (`parse_header(...).tensors`, for each file).
    `base_config`: the base model version's config.json as loaded by `load_config`; None when it is not known,
    and then only the files' own consistency is checked and the status is at best "unknown".
    `finetuning_type`: NeMo's value the adapter is registered as (any case). `lora_config`: the caller's
    `{rank, alpha, dropout, target_modules}`, any of them missing or None. `base_model_name`: the names the base
    is known by (a Hugging Face repository such as "meta-llama/Llama-3.2-1B", the model's name), compared with
    adapter_config.json's `base_model_name_or_path`.
    """
    checker = _Checker(adapter, list(tensors), base_config, lora_config)
    checks = [
        checker.peft_type(finetuning_type),
        checker.rank(),
        checker.alpha(),
        checker.target_modules(),
        checker.tensor_shapes(),
        checker.layer_indices(),
    ]
    shapes_ok = all(c.ok for c in checks[3:])
    checks.append(checker.base_model_name(base_model_name, shapes_ok=shapes_ok))

    lora_config_filled = checker.filled_lora_config()  # may add warnings

    status: Status
    if not all(c.ok for c in checks):
        status = "incompatible"
    elif checker.base is None or checker.unchecked:
        status = "unknown"
    else:
        status = "compatible"
    return CompatibilityReport(
        status=status, checks=checks, warnings=list(checker.warnings), lora_config=lora_config_filled
    )


_MAX_MESSAGES: Final = 5


class _Problems:
    """Problems of one check, those of the same kind (the same module in every layer) said once."""

    def __init__(self) -> None:
        self._groups: dict[tuple[Any, ...], tuple[str, str, int]] = {}

    def add(self, key: tuple[Any, ...], message: str, *, what: str = "tensors") -> None:
        first = self._groups.get(key)
        if first is None:
            self._groups[key] = (message, what, 1)
        else:
            self._groups[key] = (first[0], first[1], first[2] + 1)

    def __bool__(self) -> bool:
        return bool(self._groups)

    def message(self) -> str:
        sentences = [
            message + (f" (and {count - 1} more {what if count > 2 else what[:-1]} like it)" if count > 1 else "")
            for message, what, count in self._groups.values()
        ]
        if len(sentences) > _MAX_MESSAGES:
            rest = len(sentences) - _MAX_MESSAGES
            sentences = [*sentences[:_MAX_MESSAGES], f"and {rest} more problem{'s' if rest > 1 else ''}"]
        return ". ".join(sentences)


class _Checker:
    def __init__(
        self,
        adapter: AdapterConfig,
        tensors: list[TensorInfo],
        base_config: Mapping[str, Any] | None,
        lora_config: Mapping[str, Any] | None,
    ) -> None:
        self.adapter = adapter
        self.tensors = tensors
        self.lora, self.other = lora_tensors(tensors, layers_pattern=adapter.layers_pattern)
        self.base = _Base.of(base_config) if base_config is not None else None
        self.lora_config = dict(lora_config) if lora_config is not None else None
        self.warnings: list[str] = []
        self.unchecked: list[str] = []
        self.kind = adapter.peft_type
        # Modules of a multimodal base's vision or audio tower: checked for consistency, not against the base.
        self.tower = [t for t in self.lora if _in_other_tower(t.module)]
        self.text = [t for t in self.lora if not _in_other_tower(t.module)]
        if self.tower:
            modules = sorted({t.module for t in self.tower})
            self.warnings.append(
                f"{len(modules)} adapted modules of a vision or audio tower (such as {modules[0]}) were checked "
                "for consistency only, not against the base's language model"
            )

    # -- the seven checks ---------------------------------------------------------------------------------------

    def peft_type(self, finetuning_type: str) -> Check:
        wanted = finetuning_type.strip().lower()
        adapter = self.adapter
        accepted = finetuning_types_for(adapter)
        described = f"peft_type {adapter.peft_type}" + (" with use_dora" if adapter.use_dora else "")
        if wanted not in FINETUNING_TYPES:
            return _fail("peft_type", f"finetuning_type {finetuning_type!r} is not one of NeMo's values")
        if wanted in TRAINING_OBJECTIVES:
            return _ok(
                "peft_type", f"'{wanted}' names how the adapter was trained; adapter_config.json has {described}"
            )
        if wanted in accepted:
            return _ok("peft_type", f"adapter_config.json has {described}, which is finetuning_type '{wanted}'")
        suggestion = f"; register it as '{accepted[0]}'" if accepted else ""
        if wanted in FULL_WEIGHT_TYPES:
            return _fail(
                "peft_type",
                f"finetuning_type '{wanted}' is for fine-tuned model weights, but the files are a PEFT adapter "
                f"(adapter_config.json has {described}){suggestion}",
            )
        if wanted == "dora" and adapter.peft_type == "LORA":
            return _fail(
                "peft_type",
                "finetuning_type 'dora' needs use_dora true in adapter_config.json; this is a plain LoRA adapter"
                f"{suggestion}",
            )
        if not accepted:
            known = "LORA, ADALORA, PROMPT_TUNING, P_TUNING and PREFIX_TUNING"
            return _fail(
                "peft_type",
                f"adapter_config.json has peft_type {adapter.peft_type}, which has no NeMo finetuning_type "
                f"(the adapters modelyard registers are {known})",
            )
        return _fail(
            "peft_type",
            f"adapter_config.json has {described}, which is finetuning_type "
            f"{' or '.join(repr(a) for a in accepted)}, not '{wanted}'{suggestion}",
        )

    def rank(self) -> Check:
        if not self.adapter.is_lora:
            return _ok("rank", f"{NOT_APPLICABLE}: {self.kind} adapters have no rank")
        adapter = self.adapter
        problems = _Problems()
        given = self._given("rank")
        if given is not None:
            if not _is_number(given):
                problems.add(("given",), f"lora_config.rank must be a number, not {given!r}")
            elif given != adapter.r:
                problems.add(("given",), f"lora_config.rank is {given} but adapter_config.json has r={adapter.r}")

        note = ""
        if adapter.peft_type == "ADALORA":
            note = "; AdaLoRA prunes the rank of each module, so the tensors' ranks were not compared with r"
        else:
            regex_keys = [k for k in adapter.rank_pattern if not is_plain_pattern(k)]
            rank_keys = ModuleMatcher(adapter.rank_pattern)
            for t in self.lora:
                if t.part not in ("A", "B") or t.bias or len(t.shape) != 2:
                    continue
                actual = t.shape[0] if t.part == "A" else t.shape[1]
                key = rank_keys.first(t.module)
                from_pattern = adapter.rank_pattern[key] if key is not None else None
                expected = from_pattern if from_pattern is not None else adapter.r
                if actual == expected or (regex_keys and actual in adapter.rank_pattern.values()):
                    continue
                said = (
                    f"adapter_config.json's rank_pattern gives it rank {expected}"
                    if from_pattern is not None
                    else f"adapter_config.json says r={expected}"
                )
                problems.add(
                    ("tensor", t.part, t.embedding, actual, expected),
                    f"{_tensor_label(t)} of {t.module} has rank {actual}; {said}",
                )
            if regex_keys:
                self.warnings.append(
                    f"rank_pattern keys that are regular expressions ({', '.join(regex_keys[:3])}) were not "
                    "evaluated: a tensor whose rank is one of rank_pattern's values was accepted"
                )
        if problems:
            return _fail("rank", problems.message())
        message = f"r={adapter.r}"
        if adapter.rank_pattern:
            message += f", with rank_pattern {_short_mapping(adapter.rank_pattern)}"
        if given is not None:
            message += ", as lora_config.rank says"
        if self.lora and not note:
            message += "; every lora_A and lora_B has the rank it should"
        return _ok("rank", message + note)

    def alpha(self) -> Check:
        if not self.adapter.is_lora:
            return _ok("alpha", f"{NOT_APPLICABLE}: {self.kind} adapters have no lora_alpha")
        alpha = self.adapter.lora_alpha
        if self.adapter.raw.get("use_rslora") is True:
            self.warnings.append(
                "use_rslora is true: the adapter is scaled by lora_alpha / sqrt(r), not lora_alpha / r; "
                "check that the serving engine supports rank-stabilized LoRA"
            )
        given = self._given("alpha")
        if given is None:
            return _ok("alpha", f"lora_alpha={_number(alpha)}")
        if not _is_number(given):
            return _fail("alpha", f"lora_config.alpha must be a number, not {given!r}")
        if alpha is None or not math.isclose(given, alpha):
            return _fail(
                "alpha",
                f"lora_config.alpha is {_number(given)} but adapter_config.json has lora_alpha={_number(alpha)}",
            )
        return _ok("alpha", f"lora_alpha={_number(alpha)}, as lora_config.alpha says")

    def target_modules(self) -> Check:
        if not self.adapter.is_lora:
            if self.adapter.is_prompt_learning:
                return _ok("target_modules", f"{NOT_APPLICABLE}: {self.kind} adapters do not adapt modules")
            return self._unchecked("target_modules")
        targets = self.adapter.target_modules
        problems = _Problems()
        modules = _unique(t.module for t in self.lora)

        if isinstance(targets, list):
            targeted = _Targets(targets)
            listed = _names(targets, limit=10)
            for module in modules:
                if not targeted.match(module):
                    problems.add(
                        ("untargeted", module.rsplit(".", 1)[-1]),
                        f"{module} has LoRA tensors but is not among adapter_config.json's target_modules ({listed})",
                        what="modules",
                    )
            idle = [t for t in targets if t not in targeted.used] if self.lora else []
            if idle:
                self.warnings.append(
                    f"target_modules names modules that have no LoRA tensors in the adapter's files: {_names(idle)}"
                )

        base = self.base
        if base is None:
            return self._finish(
                "target_modules", problems, f"{NOT_CHECKED}: there is no base config to compare the modules with"
            )
        if base.modules is None:
            self.warnings.append(
                f"modelyard does not know the modules of '{base.family}' models: the target modules and tensor "
                "shapes were not checked against the base"
            )
            return self._finish(
                "target_modules", problems, f"{NOT_CHECKED}: the modules of '{base.family}' models are not known"
            )

        known = base.modules
        names = [t.module_name for t in self.text]
        if isinstance(targets, list):
            # A multimodal base's tower has modules the language model's table does not list.
            names = [*([target.rsplit(".", 1)[-1] for target in targets] if not base.multimodal else []), *names]
        for name in _unique(names):
            if name not in known:
                problems.add(
                    ("missing", name),
                    f"target module '{name}' does not exist in {base.family} models, whose modules are "
                    f"{', '.join(known)}",
                )
        used = ", ".join(_unique(t.module_name for t in self.text)) or "none"
        return self._finish("target_modules", problems, f"the adapted modules ({used}) exist in {base.family} models")

    def tensor_shapes(self) -> Check:
        if self.adapter.is_prompt_learning:
            return self._prompt_shapes()
        if not self.adapter.is_lora:
            return self._unchecked("tensor_shapes")
        if not self.tensors:
            return _fail("tensor_shapes", f"no tensors were read from the adapter's {ADAPTER_WEIGHTS}")
        if not self.lora:
            return _fail(
                "tensor_shapes",
                f"the adapter's safetensors files hold no LoRA tensors (lora_A/lora_B), only "
                f"{_names(t.name for t in self.other)}",
            )
        problems = _Problems()
        self._lora_consistency(problems)
        base = self.base
        unknown = 0
        if base is not None and base.modules is not None:
            unknown = self._lora_against_base(base, problems)
            self._saved_modules(base, problems)
        elif self.other:
            self.warnings.append(
                f"tensors that are not LoRA weights were not checked: {_names(t.name for t in self.other)}"
            )

        count = (
            _count(len(self.lora), "LoRA tensor") + " on " + _count(len(_unique(t.module for t in self.lora)), "module")
        )
        if base is None:
            return self._finish(
                "tensor_shapes", problems, f"{NOT_CHECKED} against a base: the {count} are consistent with each other"
            )
        if base.modules is None:
            return self._finish(
                "tensor_shapes", problems, f"{NOT_CHECKED}: the modules of '{base.family}' models are not known"
            )
        if unknown:
            count = _count(len(self.text) - unknown, "LoRA tensor")
            return self._finish(
                "tensor_shapes",
                problems,
                f"the {count} of modules the base has fit its dimensions; "
                f"{_count(unknown, 'tensor')} of modules it does not have could not be checked",
            )
        return self._finish("tensor_shapes", problems, f"the {count} fit the base's dimensions")

    def layer_indices(self) -> Check:
        adapter = self.adapter
        base = self.base
        if adapter.is_prompt_learning:
            return self._prompt_layers()
        if not adapter.is_lora:
            return self._unchecked("layer_indices")
        problems = _Problems()
        layers = sorted({t.layer for t in self.text if t.layer is not None})
        allowed = adapter.layers_to_transform
        if allowed is not None:
            allowed_set = set(allowed)
            outside = [n for n in layers if n not in allowed_set]
            if outside:
                problems.add(
                    ("transform",),
                    f"the tensors are in {_layers(outside)}, which adapter_config.json's layers_to_transform "
                    f"({_ranges(allowed)}) leaves out",
                )
        where = _layers(layers) if layers else "no layer"
        if base is None:
            return self._finish(
                "layer_indices", problems, f"{NOT_CHECKED}: there is no base config; the tensors are in {where}"
            )
        depth = base.num_layers
        if depth is None:
            return self._finish("layer_indices", problems, f"{NOT_CHECKED}: the base config gives no number of layers")
        past = [n for n in layers if n >= depth]
        if past:
            first = next(t.module for t in self.text if t.layer == past[0])
            problems.add(
                ("past",),
                f"the tensors are in {_layers(past)} (such as {first}) but the base has {depth} layers "
                f"(0 to {depth - 1})",
            )
        if allowed is not None and any(n >= depth for n in allowed):
            problems.add(
                ("allowed",),
                f"adapter_config.json's layers_to_transform names {_layers([n for n in allowed if n >= depth])} "
                f"but the base has {depth} layers (0 to {depth - 1})",
            )
        return self._finish("layer_indices", problems, f"the tensors are in {where}; the base has {depth}")

    def base_model_name(self, base_model_name: str | Sequence[str] | None, *, shapes_ok: bool) -> Check:
        named = self.adapter.base_model_name_or_path
        if not named:
            return _ok("base_model_name", "adapter_config.json names no base model")
        candidates = [base_model_name] if isinstance(base_model_name, str) else list(base_model_name or ())
        candidates = [c for c in candidates if c]
        if not candidates:
            return _ok("base_model_name", f"{NOT_CHECKED}: adapter_config.json names {named!r}; no base name given")
        if any(_same_model(named, c) for c in candidates):
            return _ok("base_model_name", f"adapter_config.json names {named!r}, the base model")
        base = candidates[0]
        if not shapes_ok:
            return _fail(
                "base_model_name",
                f"adapter_config.json says the adapter was trained on {named!r}, not {base!r}, and its tensors do "
                f"not fit {base!r} (see the other checks)",
            )
        self.warnings.append(
            f"adapter_config.json says the adapter was trained on {named!r}, not {base!r}; its shapes fit "
            f"{base!r}, but make sure it was trained on a model with the same weights"
        )
        return _ok(
            "base_model_name", f"adapter_config.json names {named!r}, another model whose shapes {base!r} shares"
        )

    def filled_lora_config(self) -> dict[str, Any] | None:
        adapter = self.adapter
        given = self.lora_config
        if not adapter.is_lora:
            if given:
                self.warnings.append(f"lora_config does not apply to {self.kind} adapters and was kept as given")
            return given
        if isinstance(adapter.target_modules, list):
            targets = sorted(set(adapter.target_modules))
        else:
            targets = sorted({t.module_name for t in self.lora})
        from_files: dict[str, Any] = {
            "rank": adapter.r,
            "alpha": _plain(adapter.lora_alpha),
            "dropout": adapter.lora_dropout,
            "target_modules": targets,
        }
        result = dict(given or {})
        for key, value in from_files.items():
            if result.get(key) is None:
                result[key] = value
        if given is not None:
            given_targets = given.get("target_modules")
            if isinstance(given_targets, list | tuple) and {str(t).rsplit(".", 1)[-1] for t in given_targets} != {
                t.rsplit(".", 1)[-1] for t in targets
            }:
                self.warnings.append(
                    f"lora_config.target_modules ({_names(map(str, given_targets), limit=10)}) differs from the "
                    f"modules the adapter's files adapt ({_names(targets, limit=10)})"
                )
            given_dropout = given.get("dropout")
            if (
                _is_number(given_dropout)
                and adapter.lora_dropout is not None
                and not math.isclose(given_dropout, adapter.lora_dropout)
            ):
                self.warnings.append(
                    f"lora_config.dropout is {given_dropout} but adapter_config.json has "
                    f"lora_dropout={adapter.lora_dropout} (it only matters for training)"
                )
        return result

    # -- LoRA tensors -------------------------------------------------------------------------------------------

    def _lora_consistency(self, problems: _Problems) -> None:
        by_module: dict[str, set[str]] = {}
        for t in self.lora:
            by_module.setdefault(t.module, set()).add(t.part)
            expected_ndim = 1 if t.bias or t.part == "magnitude" else 2
            if len(t.shape) != expected_ndim:
                problems.add(
                    ("ndim", t.module_name, t.part, len(t.shape)),
                    f"{_tensor_label(t)} of {t.module} has the shape {list(t.shape)}; it should have "
                    f"{expected_ndim} dimension{'s' if expected_ndim > 1 else ''}",
                )
        for module, parts in by_module.items():
            name = module.rsplit(".", 1)[-1]
            for missing, present in (("A", "B"), ("B", "A")):
                if present in parts and missing not in parts:
                    problems.add(
                        ("unpaired", name, missing),
                        f"{module} has lora_{present} but no lora_{missing}",
                        what="modules",
                    )
            if self.adapter.use_dora and "magnitude" not in parts:
                problems.add(
                    ("dora", name),
                    f"use_dora is true in adapter_config.json but {module} has no lora_magnitude_vector",
                    what="modules",
                )
            if not self.adapter.use_dora and "magnitude" in parts:
                problems.add(
                    ("not dora", name),
                    f"{module} has a lora_magnitude_vector (DoRA) but adapter_config.json's use_dora is not true",
                    what="modules",
                )

    def _lora_against_base(self, base: _Base, problems: _Problems) -> int:
        """Check the LoRA tensors of known modules; the number of tensors whose module the base does not have."""
        unchecked_sides: set[str] = set()
        unknown = 0
        for t in self.text:
            shape = base.shape_of(t.module)
            if shape is None:
                unknown += 1  # target_modules says why
                continue
            if t.part == "E":
                continue  # AdaLoRA's E is (r, 1)
            if t.part == "A" and not t.bias:
                if len(t.shape) != 2:
                    continue
                key, actual, side = shape.in_dim, t.shape[1], "input features"
                if t.embedding:
                    side = "rows of embeddings"
            elif len(t.shape) < 1:
                continue
            else:  # B's weight (out, r) or bias (out,), DoRA's magnitude (out,)
                key, actual, side = shape.out_dim, t.shape[0], "output features"
                if t.part == "magnitude":
                    side = "values"
            if key is None:
                continue
            dim = base.dims.get(key)
            if dim is None:
                unchecked_sides.add(key)
                continue
            if actual != dim.value:
                problems.add(
                    ("dim", t.module_name, shape.parent, t.part, t.bias, actual, dim.value),
                    f"{_tensor_label(t)} of {t.module} has {actual} {side}; {dim.description}",
                )
        if unchecked_sides:
            self.unchecked.append("tensor_shapes")
            self.warnings.append(
                "the base config does not give every dimension, so some LoRA shapes were not checked "
                f"(missing: {', '.join(sorted(unchecked_sides))})"
            )
        return unknown

    def _saved_modules(self, base: _Base, problems: _Problems) -> None:
        """Full copies of base modules (modules_to_save, resized embeddings): the vocabulary and hidden size."""
        unknown: list[str] = []
        for t in self.other:
            module = t.name.removeprefix("base_model.model.")
            module, _, param = module.rpartition(".")
            shape = base.shape_of(module) if param == "weight" and module else None
            is_vocab = shape is not None and (shape.embedding or shape.out_dim == "vocab")
            if shape is None or not is_vocab or len(t.shape) != 2 or _in_other_tower(module):
                unknown.append(t.name)
                continue
            rows, cols = t.shape  # (vocabulary, hidden) for an embedding and an LM head alike
            hidden = base.dims.get("hidden")
            rows_dim = base.dims.get((shape.in_dim or "vocab") if shape.embedding else "vocab")
            if hidden is not None and cols != hidden.value:
                problems.add(
                    ("saved", module),
                    f"{t.name} (a full copy of {module}) has {cols} columns; {hidden.description}",
                )
            if rows_dim is not None and rows != rows_dim.value:
                self.warnings.append(
                    f"{t.name} (a full copy of {module}) has {rows} rows; {rows_dim.description}: the adapter "
                    "resized it, which the serving engine must support"
                )
        if unknown:
            self.warnings.append(f"tensors that are not LoRA weights were not checked: {_names(unknown)}")

    # -- prompt learning ----------------------------------------------------------------------------------------

    def _prompt_shapes(self) -> Check:
        adapter = self.adapter
        embeddings = next(
            (t for t in self.tensors if t.name == "prompt_embeddings" or t.name.endswith(".prompt_embeddings")),
            None,
        )
        if embeddings is None:
            found = f"; it holds {_names(t.name for t in self.tensors)}" if self.tensors else ""
            return _fail(
                "tensor_shapes",
                f"the adapter's {ADAPTER_WEIGHTS} has no prompt_embeddings tensor, which PEFT saves for "
                f"{self.kind} adapters{found}",
            )
        others = [t.name for t in self.tensors if t is not embeddings]
        if others:
            self.warnings.append(f"tensors besides prompt_embeddings were not checked: {_names(others)}")
        if len(embeddings.shape) != 2:
            return _fail("tensor_shapes", f"prompt_embeddings has the shape {list(embeddings.shape)}; it must be 2-D")
        rows, cols = embeddings.shape
        problems = _Problems()
        submodules = adapter.num_transformer_submodules or (2 if adapter.task_type == "SEQ_2_SEQ_LM" else 1)
        tokens = adapter.num_virtual_tokens
        if tokens is not None and rows != tokens * submodules:
            problems.add(
                ("rows",),
                f"prompt_embeddings has {rows} rows; num_virtual_tokens {tokens} x {submodules} transformer "
                f"submodule{'s' if submodules > 1 else ''} make {tokens * submodules}",
            )
        prefix = self.kind == "PREFIX_TUNING"
        token_dim = adapter.token_dim
        if prefix:
            layers = adapter.num_layers
            if token_dim is not None and layers is not None and cols != layers * 2 * token_dim:
                problems.add(
                    ("cols",),
                    f"prompt_embeddings has {cols} columns; num_layers {layers} x 2 (keys and values) x token_dim "
                    f"{token_dim} make {layers * 2 * token_dim}",
                )
        elif token_dim is not None and cols != token_dim:
            problems.add(
                ("cols",), f"prompt_embeddings has {cols} columns; adapter_config.json's token_dim is {token_dim}"
            )
        width = token_dim if token_dim is not None else (None if prefix else cols)

        base = self.base
        if base is None:
            return self._finish(
                "tensor_shapes", problems, f"{NOT_CHECKED} against a base: prompt_embeddings {list(embeddings.shape)}"
            )
        # Prefix tuning writes keys and values, which are key/value heads x head_dim wide (PEFT sets token_dim so).
        dim = base.dims.get("kv" if prefix else "hidden")
        if width is None or dim is None:
            self.unchecked.append("tensor_shapes")
            return self._finish(
                "tensor_shapes", problems, f"{NOT_CHECKED}: the width of the prompt or of the base is not known"
            )
        what = "token_dim" if token_dim is not None else "prompt_embeddings' width"
        if width != dim.value:
            problems.add(("base",), f"{what} is {width}; {dim.description}")
        return self._finish(
            "tensor_shapes", problems, f"prompt_embeddings {list(embeddings.shape)} fits the base ({what} {width})"
        )

    def _prompt_layers(self) -> Check:
        layers = self.adapter.num_layers
        base = self.base
        prefix = self.kind == "PREFIX_TUNING"
        if not prefix:
            if base is not None and base.num_layers is not None and layers is not None and layers != base.num_layers:
                self.warnings.append(
                    f"adapter_config.json's num_layers is {layers} but the base has {base.num_layers} layers: "
                    "the adapter may have been trained on another model"
                )
            return _ok("layer_indices", f"{NOT_APPLICABLE}: a {self.kind} prompt goes before the first layer")
        if base is None or base.num_layers is None or layers is None:
            self.unchecked.append("layer_indices")
            return _ok("layer_indices", f"{NOT_CHECKED}: the number of layers of the prefix or the base is not known")
        if layers != base.num_layers:
            return _fail(
                "layer_indices",
                f"adapter_config.json's num_layers is {layers} but the base has {base.num_layers} layers: prefix "
                "tuning holds keys and values for every layer",
            )
        return _ok("layer_indices", f"the prefix covers the base's {layers} layers")

    # -- helpers --------------------------------------------------------------------------------------------------

    def _given(self, key: str) -> Any:
        return self.lora_config.get(key) if self.lora_config is not None else None

    def _unchecked(self, name: str) -> Check:
        self.unchecked.append(name)
        return _ok(name, f"{NOT_CHECKED}: modelyard does not check the files of {self.kind} adapters")

    def _finish(self, name: str, problems: _Problems, ok_message: str) -> Check:
        if problems:
            return _fail(name, problems.message())
        if ok_message.startswith(NOT_CHECKED):
            self.unchecked.append(name)
        return _ok(name, ok_message)


def _ok(name: str, message: str) -> Check:
    return Check(name=name, ok=True, message=message)


def _fail(name: str, message: str) -> Check:
    return Check(name=name, ok=False, message=message)


def _in_other_tower(module: str) -> bool:
    return not _OTHER_TOWERS.isdisjoint(module.split("."))


class _Targets:
    """A target_modules list as PEFT reads it (a module is targeted when its path is an entry or ends with "." + an
    entry), remembering which entries matched something."""

    _MAX_ODD: Final = 100

    def __init__(self, targets: list[str]) -> None:
        self.plain = {t for t in targets if is_plain_pattern(t)}
        # PEFT takes list entries literally; the few that the fast matcher skips are compared one by one.
        self.odd = [t for t in targets if not is_plain_pattern(t)][: self._MAX_ODD]
        self.used: set[str] = set()

    def match(self, module: str) -> bool:
        parts = module.split(".")
        suffixes = {".".join(parts[-n:]) for n in range(1, min(len(parts), ModuleMatcher.MAX_PARTS) + 1)}
        found = (suffixes & self.plain) | {t for t in self.odd if module == t or module.endswith("." + t)}
        self.used |= found
        return bool(found)


def _tensor_label(t: LoraTensor) -> str:
    if t.part == "magnitude":
        return "lora_magnitude_vector"
    if t.part == "E":
        return "lora_E"
    label = f"lora_embedding_{t.part}" if t.embedding else f"lora_{t.part}"
    return label + (" bias" if t.bias else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _names(names: Iterable[str], limit: int = 3) -> str:
    listed = list(names)
    shown = ", ".join(listed[:limit])
    return shown + (f" and {len(listed) - limit} more" if len(listed) > limit else "")


def _layers(numbers: Iterable[int]) -> str:
    """[1] -> "layer 1", [0, 1, 5] -> "layers 0-1, 5"."""
    listed = sorted(set(numbers))
    return f"layer{'' if len(listed) == 1 else 's'} {_ranges(listed)}"


def _ranges(numbers: Iterable[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: float | None) -> float | None:
    """16.0 -> 16, so a filled lora_config says what adapter_config.json says."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: float | None) -> str:
    return str(_plain(value))


def _short_mapping(mapping: Mapping[str, Any], limit: int = 3) -> str:
    items = [f"{k}: {v}" for k, v in list(mapping.items())[:limit]]
    return "{" + ", ".join(items) + (", ..." if len(mapping) > limit else "") + "}"


def _model_name(name: str) -> tuple[str | None, str] | None:
    """(organisation, repository) of a model name, lower case, without "hf://", a revision or the Hugging Face
    cache's directories around it; organisation None for a bare name or a local path."""
    text = name.strip().lower().removeprefix("hf://").split("@", 1)[0]
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    for part in parts:  # ~/.cache/huggingface/hub/models--org--name/snapshots/<sha>
        if part.startswith("models--") and part.count("--") >= 2:
            org, _, repo = part.removeprefix("models--").partition("--")
            return org, repo
    if not parts:
        return None
    if len(parts) == 2 and not text.startswith(("/", "~", ".")):
        return parts[0], parts[1]
    return None, parts[-1]


def _same_model(a: str, b: str) -> bool:
    """Whether two names name the same model: the same repository, and the same organisation when both give one."""
    first, second = _model_name(a), _model_name(b)
    if first is None or second is None or first[1] != second[1]:
        return False
    return first[0] is None or second[0] is None or first[0] == second[0]
