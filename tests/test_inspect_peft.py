"""adapter_config.json read from real PEFT adapters and refused when hostile; PEFT types as NeMo finetuning_types;
LoRA tensor names taken apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelyard.inspect import (
    FINETUNING_TYPES,
    AdapterConfig,
    InspectError,
    default_finetuning_type,
    finetuning_types_for,
    load_adapter_config,
    lora_tensors,
    parse_header_file,
    parse_lora_tensor,
)
from modelyard.inspect.peft import MAX_ADAPTER_CONFIG_SIZE, ModuleMatcher, layer_index, pattern_value

ADAPTERS = Path(__file__).parent / "fixtures" / "adapters"


def fixture_config(name: str) -> AdapterConfig:
    return load_adapter_config((ADAPTERS / name / "adapter_config.json").read_bytes())


def config_json(**values: Any) -> str:
    return json.dumps({"peft_type": "LORA", **values})


def test_lora_fixture() -> None:
    config = fixture_config("lora-llama")
    assert config.peft_type == "LORA"
    assert config.task_type == "CAUSAL_LM"
    assert (config.r, config.lora_alpha, config.lora_dropout) == (8, 16, 0.05)
    assert config.target_modules == ["q_proj", "v_proj"]
    assert config.base_model_name_or_path == "modelyard-fixtures/tiny-llama"
    assert config.use_dora is False
    assert config.layers_to_transform is None
    assert config.modules_to_save is None
    assert config.num_virtual_tokens is None
    assert config.is_lora
    assert not config.is_prompt_learning
    assert config.raw["peft_version"] == "0.21.2"


def test_rank_pattern_and_dora_fixtures() -> None:
    qwen = fixture_config("lora-qwen2")
    assert qwen.rank_pattern == {"down_proj": 2}
    assert qwen.alpha_pattern == {"down_proj": 4}
    assert fixture_config("dora-llama").use_dora is True


def test_prompt_learning_fixtures() -> None:
    ptuning = fixture_config("ptuning-llama")
    assert ptuning.peft_type == "P_TUNING"
    assert (ptuning.num_virtual_tokens, ptuning.token_dim, ptuning.num_layers) == (8, 64, 2)
    assert ptuning.num_transformer_submodules == 1
    assert ptuning.r is None
    assert ptuning.lora_alpha is None
    assert ptuning.target_modules is None
    assert ptuning.is_prompt_learning
    assert not ptuning.is_lora
    prefix = fixture_config("prefix-llama")
    assert (prefix.peft_type, prefix.token_dim, prefix.num_layers) == ("PREFIX_TUNING", 32, 2)


def test_peft_defaults_fill_missing_lora_values() -> None:
    config = load_adapter_config('{"peft_type": "lora", "target_modules": "model\\\\..*\\\\.q_proj"}')
    assert config.peft_type == "LORA"
    assert (config.r, config.lora_alpha, config.lora_dropout) == (8, 8, 0.0)
    assert config.target_modules == r"model\..*\.q_proj"


def test_lenient_forms() -> None:
    config = load_adapter_config(
        config_json(
            layers_to_transform=3,
            modules_to_save="lm_head",
            layers_pattern="layers",
            lora_alpha=16.5,
            base_model_name_or_path="",
        ).encode("utf-8-sig")
    )
    assert config.layers_to_transform == [3]
    assert config.modules_to_save == ["lm_head"]
    assert config.layers_pattern == ["layers"]
    assert config.lora_alpha == 16.5
    assert config.base_model_name_or_path is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        ("{", "not valid JSON"),
        ('{"peft_type": "LORA", "peft_type": "P_TUNING"}', "appears twice"),
        ('{"peft_type": "LORA", "lora_alpha": NaN}', "not valid JSON"),
        ('{"peft_type": "LORA", "r": 1' + "0" * 5000 + "}", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[]", "must hold a JSON object, not a list"),
        ('"LORA"', "must hold a JSON object, not a string"),
        ("{}", "has no 'peft_type'"),
        (config_json(peft_type=1), "'peft_type' must be a string"),
        (config_json(peft_type="LO RA"), "'peft_type' must be a PEFT type"),
        (config_json(peft_type="../../etc"), "'peft_type' must be a PEFT type"),
        (config_json(r=0), "'r' must be a positive integer"),
        (config_json(r=-8), "'r' must be a positive integer"),
        (config_json(r="8"), "'r' must be a positive integer"),
        (config_json(r=True), "'r' must be a positive integer"),
        (config_json(r=8.0), "'r' must be a positive integer"),
        (config_json(r=2**60), "'r' must be a positive integer"),
        (config_json(lora_alpha="16"), "'lora_alpha' must be a number"),
        (config_json(lora_alpha=False), "'lora_alpha' must be a number"),
        (config_json(lora_alpha=1e300), "'lora_alpha' must be a number"),
        (config_json(lora_dropout=2), "'lora_dropout' must be between 0 and 1"),
        (config_json(target_modules=[1]), "'target_modules' must be a list of module names"),
        (config_json(target_modules={"q_proj": 1}), "'target_modules' must be a list of module names"),
        (config_json(target_modules=""), "'target_modules' must be a list of module names or a regular expression"),
        (config_json(target_modules=["q_proj", ""]), "'target_modules' must be a list of module names"),
        (config_json(layers_to_transform=[-1]), "'layers_to_transform' must be a layer index"),
        (config_json(layers_to_transform="0"), "'layers_to_transform' must be a layer index"),
        (config_json(use_dora="yes"), "'use_dora' must be true or false"),
        (config_json(rank_pattern={"down_proj": "2"}), "'rank_pattern' must be an object"),
        (config_json(rank_pattern=["down_proj"]), "'rank_pattern' must be an object"),
        (config_json(alpha_pattern={"down_proj": None}), "'alpha_pattern' must be an object"),
        (config_json(base_model_name_or_path=123), "'base_model_name_or_path' must be a string"),
        (config_json(base_model_name_or_path="x" * 5000), "'base_model_name_or_path' must be a string"),
        (config_json(num_virtual_tokens=0), "'num_virtual_tokens' must be a positive integer"),
        (config_json(token_dim=[64]), "'token_dim' must be a positive integer"),
    ],
)
def test_hostile_configs_are_refused(data: str | bytes, expected: str) -> None:
    with pytest.raises(InspectError, match=expected) as caught:
        load_adapter_config(data, name="adapters/x/adapter_config.json")
    assert str(caught.value).startswith("adapters/x/adapter_config.json")


def test_oversized_config_is_refused_before_parsing() -> None:
    data = b" " * (MAX_ADAPTER_CONFIG_SIZE + 1)
    with pytest.raises(InspectError, match="more than the 4 MiB"):
        load_adapter_config(data)


def test_adalora_masks_are_not_ranks() -> None:
    config = load_adapter_config(json.dumps({"peft_type": "ADALORA", "rank_pattern": {"q_proj": [True, False]}}))
    assert config.rank_pattern == {}
    assert config.raw["rank_pattern"] == {"q_proj": [True, False]}


def test_nemo_finetuning_types() -> None:
    assert len(FINETUNING_TYPES) == 25
    assert len(set(FINETUNING_TYPES)) == 25
    assert all(t == t.lower() for t in FINETUNING_TYPES)


@pytest.mark.parametrize(
    ("peft_type", "extra", "expected"),
    [
        ("LORA", {}, ("lora", "qlora", "lora_plus")),
        ("LORA", {"use_dora": True}, ("dora",)),
        ("ADALORA", {}, ("adalora",)),
        ("PROMPT_TUNING", {}, ("prompt_tuning", "soft_prompt")),
        ("P_TUNING", {}, ("p_tuning", "p_tuning_v2", "soft_prompt")),
        ("PREFIX_TUNING", {}, ("prefix_tuning", "p_tuning_v2", "soft_prompt")),
        ("IA3", {}, ()),
    ],
)
def test_peft_types_map_to_finetuning_types(peft_type: str, extra: dict[str, Any], expected: tuple[str, ...]) -> None:
    config = load_adapter_config(json.dumps({"peft_type": peft_type, **extra}))
    assert finetuning_types_for(config) == expected
    assert default_finetuning_type(config) == (expected[0] if expected else None)
    assert set(expected) <= set(FINETUNING_TYPES)


@pytest.mark.parametrize(
    ("name", "module", "layer", "part", "embedding", "bias"),
    [
        (
            "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight",
            "model.layers.3.self_attn.q_proj",
            3,
            "A",
            False,
            False,
        ),
        (
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "transformer.h.0.attn.c_attn",
            0,
            "B",
            False,
            False,
        ),
        ("model.layers.12.mlp.down_proj.lora_A.weight", "model.layers.12.mlp.down_proj", 12, "A", False, False),
        ("base_model.model.model.layers.1.mlp.up_proj.lora_B.bias", "model.layers.1.mlp.up_proj", 1, "B", False, True),
        (
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
            "model.layers.0.self_attn.q_proj",
            0,
            "A",
            False,
            False,
        ),
        ("base_model.model.model.embed_tokens.lora_embedding_A", "model.embed_tokens", None, "A", True, False),
        ("base_model.model.transformer.wte.lora_embedding_B", "transformer.wte", None, "B", True, False),
        (
            "base_model.model.model.layers.2.self_attn.v_proj.lora_magnitude_vector",
            "model.layers.2.self_attn.v_proj",
            2,
            "magnitude",
            False,
            False,
        ),
        (
            "base_model.model.model.layers.0.self_attn.k_proj.lora_E",
            "model.layers.0.self_attn.k_proj",
            0,
            "E",
            False,
            False,
        ),
        (
            "base_model.model.model.layers.5.block_sparse_moe.experts.3.w1.lora_A.weight",
            "model.layers.5.block_sparse_moe.experts.3.w1",
            5,
            "A",
            False,
            False,
        ),
        (
            "base_model.model.model.language_model.layers.7.self_attn.o_proj.lora_B.weight",
            "model.language_model.layers.7.self_attn.o_proj",
            7,
            "B",
            False,
            False,
        ),
    ],
)
def test_lora_tensor_names(name: str, module: str, layer: int | None, part: str, embedding: bool, bias: bool) -> None:
    parsed = parse_lora_tensor(name, (8, 64))
    assert parsed is not None
    assert (parsed.module, parsed.layer, parsed.part, parsed.embedding, parsed.bias) == (
        module,
        layer,
        part,
        embedding,
        bias,
    )
    assert parsed.module_name == module.rsplit(".", 1)[-1]
    assert parsed.shape == (8, 64)
    assert parsed.name == name


@pytest.mark.parametrize(
    "name",
    [
        "prompt_embeddings",
        "base_model.model.lm_head.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.weight",
        "lora_A.weight",
        "base_model.model..lora_A.weight",
        "base_model.model.model.layers.0.q_proj.lora_A.weight.extra",
        "base_model.model.model.layers.0.q_proj.lora_C.weight",
    ],
)
def test_names_that_are_not_lora_tensors(name: str) -> None:
    assert parse_lora_tensor(name) is None


def test_layer_index() -> None:
    assert layer_index("model.layers.3.mlp") == 3
    assert layer_index("transformer.h.0.attn.c_attn") == 0
    assert layer_index("model.embed_tokens") is None
    assert layer_index("model.layers.mlp") is None
    assert layer_index("encoder.stack.4.attn", ["stack"]) == 4
    assert layer_index("model.layers." + "9" * 5000 + ".q_proj") == 10**9
    assert layer_index("model.layers.\u0663.q_proj") is None  # an Arabic-Indic digit is not an index


def test_pattern_value_matches_module_suffixes_only() -> None:
    patterns = {"down_proj": 2, "model.layers.0.self_attn.q_proj": 16, "(a+)+$": 99}
    assert pattern_value(patterns, "model.layers.1.mlp.down_proj") == 2
    assert pattern_value(patterns, "model.layers.0.self_attn.q_proj") == 16
    assert pattern_value(patterns, "model.layers.1.self_attn.q_proj") is None
    assert pattern_value(patterns, "model.layers.1.mlp.xdown_proj") is None
    assert pattern_value(patterns, "a" * 40) is None  # a regular expression is never evaluated


def test_fixture_tensors_split() -> None:
    header = parse_header_file(ADAPTERS / "dora-llama" / "adapter_model.safetensors")
    lora, other = lora_tensors(header.tensors)
    assert other == []
    assert len(lora) == 24
    assert {t.part for t in lora} == {"A", "B", "magnitude"}
    q_a = next(t for t in lora if t.module == "model.layers.1.self_attn.q_proj" and t.part == "A")
    assert (q_a.layer, q_a.shape) == (1, (4, 64))
    magnitude = next(t for t in lora if t.module == "model.layers.0.self_attn.k_proj" and t.part == "magnitude")
    assert magnitude.shape == (32,)

    prompt = parse_header_file(ADAPTERS / "ptuning-llama" / "adapter_model.safetensors")
    lora, other = lora_tensors(prompt.tensors)
    assert lora == []
    assert [(t.name, t.shape) for t in other] == [("prompt_embeddings", (8, 64))]


def test_module_matcher_takes_the_first_key_that_names_the_module() -> None:
    matcher = ModuleMatcher(["model.layers.0.self_attn.q_proj", "q_proj", "self_attn.q_proj", "x" + "." * 40])
    assert matcher.first("model.layers.0.self_attn.q_proj") == "model.layers.0.self_attn.q_proj"
    assert matcher.first("model.layers.1.self_attn.q_proj") == "q_proj"
    assert matcher.first("q_proj") == "q_proj"
    assert matcher.first("model.layers.1.self_attn.xq_proj") is None
    assert ModuleMatcher([]).first("q_proj") is None
    assert ModuleMatcher(["a.b"]).first("a.b") == "a.b"
    assert ModuleMatcher(["b"]).first("a.b") == "b"
