"""The compatibility check on real PEFT adapters (tests/fixtures/adapters, made by scripts/make_peft_fixtures.py)
against their tiny bases and real config.json files, and on hand-made tensor lists for the cases PEFT makes rarely."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from modelyard.inspect import (
    CHECK_NAMES,
    AdapterConfig,
    CompatibilityReport,
    TensorInfo,
    check_compatibility,
    default_finetuning_type,
    load_adapter_config,
    load_config,
    parse_header_file,
    refusal_detail,
)

ADAPTERS = Path(__file__).parent / "fixtures" / "adapters"
CONFIGS = Path(__file__).parent / "fixtures" / "configs"

COMPATIBLE = {
    "lora-llama": "tiny-llama",
    "lora-qwen2": "tiny-qwen2",
    "lora-gpt2": "tiny-gpt2",
    "dora-llama": "tiny-llama",
    "ptuning-llama": "tiny-llama",
    "prefix-llama": "tiny-llama",
}
BROKEN = {
    "broken-hidden-size": (
        "tensor_shapes",
        "lora_A of model.layers.0.self_attn.q_proj has 96 input features; the base's hidden size is 64",
    ),
    "broken-target-module": ("target_modules", "target module 'qkv_proj' does not exist in llama models"),
    "broken-rank": ("rank", "lora_A of model.layers.0.self_attn.q_proj has rank 4; adapter_config.json says r=8"),
    "broken-layer-index": (
        "layer_indices",
        "the tensors are in layers 2-3 (such as model.layers.2.self_attn.q_proj) but the base has 2 layers (0 to 1)",
    ),
}


def adapter(name: str) -> tuple[AdapterConfig, list[TensorInfo]]:
    directory = ADAPTERS / name
    config = load_adapter_config((directory / "adapter_config.json").read_bytes())
    return config, parse_header_file(directory / "adapter_model.safetensors").tensors


def base(name: str) -> dict[str, Any]:
    return load_config((ADAPTERS / "bases" / name / "config.json").read_bytes())


def real_config(name: str) -> dict[str, Any]:
    return load_config((CONFIGS / f"{name}.json").read_bytes())


def check(
    name: str,
    base_name: str | None = "tiny-llama",
    *,
    finetuning_type: str | None = None,
    lora_config: dict[str, Any] | None = None,
    base_model_name: str | None = None,
) -> CompatibilityReport:
    config, tensors = adapter(name)
    return check_compatibility(
        config,
        tensors,
        base(base_name) if base_name else None,
        finetuning_type=finetuning_type or default_finetuning_type(config) or "lora",
        lora_config=lora_config,
        base_model_name=base_model_name,
    )


def failing(report: CompatibilityReport) -> set[str]:
    return {c.name for c in report.failures}


def tensor(name: str, *shape: int) -> TensorInfo:
    return TensorInfo(name=name, dtype="BF16", shape=shape, numel=math.prod(shape))


def lora_pair(module: str, r: int, in_features: int, out_features: int) -> list[TensorInfo]:
    prefix = f"base_model.model.{module}"
    return [tensor(f"{prefix}.lora_A.weight", r, in_features), tensor(f"{prefix}.lora_B.weight", out_features, r)]


def lora_config_json(**values: Any) -> AdapterConfig:
    return load_adapter_config(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, **values}))


@pytest.mark.parametrize(("name", "base_name"), COMPATIBLE.items())
def test_compatible_fixtures_pass(name: str, base_name: str) -> None:
    report = check(name, base_name, base_model_name=f"modelyard-fixtures/{base_name}")
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.failures == [], report.failures
    assert report.status == "compatible"
    assert report.warnings == []
    assert refusal_detail(report) == []


@pytest.mark.parametrize(("name", "expected"), BROKEN.items())
def test_broken_fixtures_fail_with_the_check_that_caught_them(name: str, expected: tuple[str, str]) -> None:
    check_name, message = expected
    report = check(name, base_model_name="modelyard-fixtures/tiny-llama")
    assert report.status == "incompatible"
    assert failing(report) == {check_name}
    assert message in report.check(check_name).message
    assert refusal_detail(report) == [
        {"loc": ["compatibility", check_name], "msg": report.check(check_name).message, "type": "compatibility"}
    ]


def test_hidden_size_message_names_every_wrong_projection() -> None:
    message = check("broken-hidden-size").check("tensor_shapes").message
    assert (
        "lora_B of model.layers.0.self_attn.q_proj has 96 output features; the base's 4 attention heads x " in message
    )
    assert "lora_B of model.layers.0.self_attn.v_proj has 48 output features; the base's 2 key/value heads" in message
    assert "(and 1 more tensor like it)" in message  # layer 1 is said once, not again


def test_target_module_failure_does_not_claim_unknown_tensors_fit() -> None:
    report = check("broken-target-module")
    assert "4 tensors of modules it does not have could not be checked" in report.check("tensor_shapes").message


def test_the_same_adapter_fails_on_another_base() -> None:
    report = check("lora-llama", "tiny-qwen2")
    assert failing(report) == {"tensor_shapes"}
    assert "has 64 input features; the base's hidden size is 48" in report.check("tensor_shapes").message

    gpt2 = check("lora-llama", "tiny-gpt2")
    assert failing(gpt2) == {"target_modules"}
    assert "target module 'q_proj' does not exist in gpt2 models" in gpt2.check("target_modules").message


def test_base_model_name_another_repository_is_a_warning_when_shapes_fit() -> None:
    report = check("lora-llama", base_model_name="meta-llama/Llama-3.2-1B")
    assert report.status == "compatible"
    assert report.check("base_model_name").ok
    assert any(
        "trained on 'modelyard-fixtures/tiny-llama', not 'meta-llama/Llama-3.2-1B'" in w for w in report.warnings
    )


def test_base_model_name_another_repository_is_an_error_when_shapes_disagree() -> None:
    report = check("broken-hidden-size", base_model_name="someone/tiny-llama-96")
    assert failing(report) == {"tensor_shapes", "base_model_name"}
    assert "and its tensors do not fit 'someone/tiny-llama-96'" in report.check("base_model_name").message


@pytest.mark.parametrize(
    "name",
    [
        "modelyard-fixtures/tiny-llama",
        "MODELYARD-FIXTURES/Tiny-Llama",
        "hf://modelyard-fixtures/tiny-llama@main",
        "tiny-llama",
        "/models/tiny-llama/",
        "/root/.cache/huggingface/hub/models--modelyard-fixtures--tiny-llama/snapshots/0123abcd",
    ],
)
def test_base_model_names_that_name_the_same_model(name: str) -> None:
    report = check("lora-llama", base_model_name=name)
    assert report.check("base_model_name").message.endswith("the base model")
    assert report.warnings == []


@pytest.mark.parametrize("name", ["other-org/tiny-llama", "tiny-llama-2", "modelyard-fixtures/tiny-qwen2"])
def test_base_model_names_that_name_another_model(name: str) -> None:
    report = check("lora-llama", base_model_name=name)
    assert report.check("base_model_name").ok
    assert len(report.warnings) == 1


def test_base_model_name_accepts_several_names() -> None:
    config, tensors = adapter("lora-llama")
    report = check_compatibility(
        config,
        tensors,
        base("tiny-llama"),
        finetuning_type="lora",
        base_model_name=["my-llama", "modelyard-fixtures/tiny-llama"],
    )
    assert report.warnings == []
    assert "not checked" in check("lora-llama").check("base_model_name").message


@pytest.mark.parametrize(
    ("name", "finetuning_type", "ok", "message"),
    [
        ("lora-llama", "LoRA", True, "which is finetuning_type 'lora'"),
        ("lora-llama", "qlora", True, "which is finetuning_type 'qlora'"),
        ("lora-llama", "lora_plus", True, ""),
        ("lora-llama", "dpo", True, "'dpo' names how the adapter was trained"),
        ("lora-llama", "p_tuning", False, "peft_type LORA, which is finetuning_type 'lora' or 'qlora' or 'lora_plus'"),
        ("lora-llama", "dora", False, "'dora' needs use_dora true in adapter_config.json; this is a plain LoRA"),
        ("lora-llama", "all_weights", False, "is for fine-tuned model weights, but the files are a PEFT adapter"),
        ("lora-llama", "lora_merged", False, "register it as 'lora'"),
        ("lora-llama", "full", False, "finetuning_type 'full' is not one of NeMo's values"),
        ("dora-llama", "dora", True, "peft_type LORA with use_dora"),
        ("dora-llama", "lora", False, "register it as 'dora'"),
        ("ptuning-llama", "p_tuning_v2", True, ""),
        ("ptuning-llama", "prompt_tuning", False, "peft_type P_TUNING, which is finetuning_type 'p_tuning'"),
        ("ptuning-llama", "lora", False, "register it as 'p_tuning'"),
        ("prefix-llama", "prefix_tuning", True, ""),
        ("prefix-llama", "p_tuning", False, "register it as 'prefix_tuning'"),
    ],
)
def test_finetuning_type_must_match_the_peft_type(name: str, finetuning_type: str, ok: bool, message: str) -> None:
    report = check(name, finetuning_type=finetuning_type)
    peft_check = report.check("peft_type")
    assert peft_check.ok is ok
    assert message in peft_check.message
    assert failing(report) == (set() if ok else {"peft_type"})


def test_peft_type_without_a_nemo_value() -> None:
    config = load_adapter_config('{"peft_type": "IA3", "target_modules": ["k_proj"]}')
    tensors = [tensor("base_model.model.model.layers.0.self_attn.k_proj.ia3_l.default", 32, 1)]
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="lora")
    assert failing(report) == {"peft_type"}
    assert "peft_type IA3, which has no NeMo finetuning_type" in report.check("peft_type").message
    # Trained with DPO: the type is accepted, the files are not checked.
    dpo = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="dpo")
    assert dpo.status == "unknown"
    assert dpo.check("tensor_shapes").message.startswith("not checked")


def test_lora_config_is_filled_from_the_files() -> None:
    report = check("lora-llama")
    assert report.lora_config == {"rank": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    partial = check("lora-llama", lora_config={"rank": 8, "alpha": None, "note": "kept"})
    assert partial.lora_config == {
        "rank": 8,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
        "note": "kept",
    }
    assert partial.check("rank").message.startswith("r=8, as lora_config.rank says")


def test_lora_config_that_agrees() -> None:
    given = {"rank": 8, "alpha": 16.0, "dropout": 0.05, "target_modules": ["v_proj", "q_proj"]}
    report = check("lora-llama", lora_config=given)
    assert report.status == "compatible"
    assert report.warnings == []
    assert report.lora_config == given


def test_lora_config_rank_and_alpha_disagreement_fails() -> None:
    report = check("lora-llama", lora_config={"rank": 16, "alpha": 32})
    assert failing(report) == {"rank", "alpha"}
    assert report.check("rank").message == "lora_config.rank is 16 but adapter_config.json has r=8"
    assert report.check("alpha").message == "lora_config.alpha is 32 but adapter_config.json has lora_alpha=16"
    assert report.lora_config is not None
    assert report.lora_config["rank"] == 16
    details = refusal_detail(report)
    assert [d["loc"] for d in details] == [["compatibility", "rank"], ["compatibility", "alpha"]]

    wrong_type = check("lora-llama", lora_config={"rank": "eight"})
    assert "lora_config.rank must be a number" in wrong_type.check("rank").message


def test_lora_config_other_disagreements_are_warnings() -> None:
    report = check("lora-llama", lora_config={"dropout": 0.1, "target_modules": ["q_proj", "k_proj"]})
    assert report.status == "compatible"
    assert any("lora_config.target_modules (q_proj, k_proj) differs" in w for w in report.warnings)
    assert any("lora_config.dropout is 0.1" in w for w in report.warnings)


def test_lora_config_for_a_prompt_adapter() -> None:
    assert check("ptuning-llama").lora_config is None
    report = check("ptuning-llama", lora_config={"rank": 8})
    assert report.lora_config == {"rank": 8}
    assert report.check("rank").message.startswith("not applicable")
    assert any("lora_config does not apply to P_TUNING adapters" in w for w in report.warnings)


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_without_a_base_config_the_status_is_unknown(name: str) -> None:
    report = check(name, None)
    assert report.status == "unknown"
    assert report.failures == []
    assert [c.name for c in report.checks] == list(CHECK_NAMES)


def test_without_a_base_config_the_files_are_still_checked() -> None:
    assert check("broken-hidden-size", None).status == "unknown"  # only a base shows it
    rank = check("broken-rank", None)
    assert rank.status == "incompatible"
    assert failing(rank) == {"rank"}
    assert failing(check("lora-llama", None, finetuning_type="p_tuning")) == {"peft_type"}
    assert failing(check("lora-llama", None, lora_config={"alpha": 8})) == {"alpha"}


def test_unknown_family_is_a_warning_and_an_unknown_status() -> None:
    config, tensors = adapter("lora-llama")
    mystery = {**base("tiny-llama"), "model_type": "mystery"}
    report = check_compatibility(config, tensors, mystery, finetuning_type="lora")
    assert report.status == "unknown"
    assert report.failures == []
    assert "modelyard does not know the modules of 'mystery' models" in report.warnings[0]
    assert report.check("layer_indices").message == "the tensors are in layers 0-1; the base has 2"


def test_real_base_configs() -> None:
    """LoRA shapes of real models, written out from their architecture."""
    llama = [
        *lora_pair("model.layers.15.self_attn.q_proj", 16, 2048, 2048),
        *lora_pair("model.layers.15.self_attn.k_proj", 16, 2048, 512),  # 8 kv heads x 64
        *lora_pair("model.layers.0.self_attn.o_proj", 16, 2048, 2048),
        *lora_pair("model.layers.0.mlp.gate_proj", 16, 2048, 8192),
        *lora_pair("model.layers.0.mlp.down_proj", 16, 8192, 2048),
    ]
    config = lora_config_json(r=16, target_modules=["q_proj", "k_proj", "o_proj", "gate_proj", "down_proj"])
    report = check_compatibility(config, llama, real_config("llama-3.2-1b"), finetuning_type="lora")
    assert report.status == "compatible", report.failures

    # Qwen3-8B: head_dim 128 is explicit, so q_proj maps 4096 to 32 x 128 = 4096 and k_proj to 8 x 128 = 1024.
    qwen3 = [
        *lora_pair("model.layers.35.self_attn.q_proj", 8, 4096, 4096),
        *lora_pair("model.layers.35.self_attn.k_proj", 8, 4096, 1024),
    ]
    report = check_compatibility(
        lora_config_json(target_modules=["q_proj", "k_proj"]), qwen3, real_config("qwen3-8b"), finetuning_type="lora"
    )
    assert report.status == "compatible", report.failures
    past = check_compatibility(
        lora_config_json(target_modules=["q_proj"]),
        lora_pair("model.layers.36.self_attn.q_proj", 8, 4096, 4096),
        real_config("qwen3-8b"),
        finetuning_type="lora",
    )
    assert failing(past) == {"layer_indices"}

    # Gemma 3 1B: 4 heads x head_dim 256 = 1024 features out of q_proj, from a hidden size of 1152.
    gemma = lora_pair("model.layers.25.self_attn.q_proj", 8, 1152, 1024) + lora_pair(
        "model.layers.25.self_attn.o_proj", 8, 1024, 1152
    )
    report = check_compatibility(
        lora_config_json(target_modules=["q_proj", "o_proj"]),
        gemma,
        real_config("gemma-3-1b-it"),
        finetuning_type="lora",
    )
    assert report.status == "compatible", report.failures

    gpt2 = lora_pair("transformer.h.11.attn.c_attn", 8, 768, 2304) + lora_pair(
        "transformer.h.11.mlp.c_proj", 8, 3072, 768
    )
    report = check_compatibility(
        lora_config_json(target_modules=["c_attn", "c_proj"]), gpt2, real_config("gpt2"), finetuning_type="lora"
    )
    assert report.status == "compatible", report.failures
    large = check_compatibility(
        lora_config_json(target_modules=["c_attn", "c_proj"]), gpt2, real_config("gpt2-large"), finetuning_type="lora"
    )
    assert failing(large) == {"tensor_shapes"}
    assert "the base's hidden size is 1280" in large.check("tensor_shapes").message


def test_mismatched_gpt2_projection_is_told_apart_by_its_parent() -> None:
    tensors = lora_pair("transformer.h.0.attn.c_proj", 8, 128, 32)  # the MLP's shape on the attention's c_proj
    report = check_compatibility(
        lora_config_json(target_modules=["c_proj"]), tensors, base("tiny-gpt2"), finetuning_type="lora"
    )
    assert failing(report) == {"tensor_shapes"}
    assert "lora_A of transformer.h.0.attn.c_proj has 128 input features; the base's 4 attention heads" in (
        report.check("tensor_shapes").message
    )


def test_embedding_lora_and_saved_modules() -> None:
    tensors = [
        tensor("base_model.model.model.embed_tokens.lora_embedding_A", 8, 128),
        tensor("base_model.model.model.embed_tokens.lora_embedding_B", 64, 8),
        tensor("base_model.model.lm_head.weight", 130, 64),
    ]
    config = lora_config_json(target_modules=["embed_tokens"], modules_to_save=["lm_head"])
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="lora")
    assert report.status == "compatible", report.failures
    assert any("has 130 rows; the base's vocabulary size is 128" in w for w in report.warnings)

    wrong = [
        tensor("base_model.model.model.embed_tokens.lora_embedding_A", 8, 256),
        tensor("base_model.model.model.embed_tokens.lora_embedding_B", 64, 8),
        tensor("base_model.model.lm_head.weight", 128, 96),
    ]
    report = check_compatibility(config, wrong, base("tiny-llama"), finetuning_type="lora")
    message = report.check("tensor_shapes").message
    assert "lora_embedding_A of model.embed_tokens has 256 rows of embeddings; the base's vocabulary size is 128" in (
        message
    )
    assert "base_model.model.lm_head.weight (a full copy of lm_head) has 96 columns; the base's hidden size is 64" in (
        message
    )


def test_files_that_are_not_consistent() -> None:
    config = lora_config_json(target_modules=["q_proj"], use_dora=True)
    tensors = [
        tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", 8, 64),
        tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", 64),
        tensor("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", 8, 64, 1),
        tensor("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", 64, 8),
    ]
    message = check_compatibility(config, tensors, None, finetuning_type="dora").check("tensor_shapes").message
    assert "model.layers.0.self_attn.q_proj has lora_A but no lora_B" in message
    assert "lora_A of model.layers.1.self_attn.q_proj has the shape [8, 64, 1]; it should have 2 dimensions" in message
    assert (
        "use_dora is true in adapter_config.json but model.layers.1.self_attn.q_proj has no lora_magnitude_vector"
        in (message)
    )

    plain = lora_config_json(target_modules=["q_proj"])
    dora_tensors = [*lora_pair("model.layers.0.self_attn.q_proj", 8, 64, 64), tensors[1]]
    report = check_compatibility(plain, dora_tensors, base("tiny-llama"), finetuning_type="lora")
    assert "has a lora_magnitude_vector (DoRA) but adapter_config.json's use_dora is not true" in (
        report.check("tensor_shapes").message
    )


def test_no_lora_tensors() -> None:
    config = lora_config_json(target_modules=["q_proj"])
    empty = check_compatibility(config, [], base("tiny-llama"), finetuning_type="lora")
    assert "no tensors were read" in empty.check("tensor_shapes").message
    others = check_compatibility(config, [tensor("prompt_embeddings", 8, 64)], None, finetuning_type="lora")
    assert "hold no LoRA tensors (lora_A/lora_B), only prompt_embeddings" in others.check("tensor_shapes").message


def test_tensors_outside_the_targets_and_layers_to_transform() -> None:
    config = lora_config_json(target_modules=["q_proj"], layers_to_transform=[0])
    tensors = lora_pair("model.layers.0.self_attn.q_proj", 8, 64, 64) + lora_pair(
        "model.layers.1.mlp.up_proj", 8, 64, 128
    )
    report = check_compatibility(config, tensors, None, finetuning_type="lora")
    assert failing(report) == {"target_modules", "layer_indices"}
    assert "model.layers.1.mlp.up_proj has LoRA tensors but is not among adapter_config.json's target_modules" in (
        report.check("target_modules").message
    )
    assert "the tensors are in layers 0-1" not in report.check("layer_indices").message
    assert "the tensors are in layer 1, which adapter_config.json's layers_to_transform (0) leaves out" in (
        report.check("layer_indices").message
    )
    past = check_compatibility(
        lora_config_json(target_modules=["q_proj"], layers_to_transform=[0, 5]),
        lora_pair("model.layers.0.self_attn.q_proj", 8, 64, 64),
        base("tiny-llama"),
        finetuning_type="lora",
    )
    assert "layers_to_transform names layer 5 but the base has 2 layers" in past.check("layer_indices").message


def test_rank_pattern_with_a_regular_expression_is_not_evaluated() -> None:
    config = lora_config_json(target_modules=["q_proj", "v_proj"], rank_pattern={r"layers\.1\..*q_proj": 4})
    tensors = lora_pair("model.layers.0.self_attn.q_proj", 8, 64, 64) + lora_pair(
        "model.layers.1.self_attn.q_proj", 4, 64, 64
    )
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="lora")
    assert report.check("rank").ok
    assert any("were not evaluated" in w for w in report.warnings)


def test_regex_target_modules() -> None:
    config = lora_config_json(target_modules=r".*\.(q_proj|v_proj)")
    tensors = lora_pair("model.layers.0.self_attn.q_proj", 8, 64, 64) + lora_pair(
        "model.layers.0.self_attn.v_proj", 8, 64, 32
    )
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="lora")
    assert report.status == "compatible", report.failures
    assert report.lora_config is not None
    assert report.lora_config["target_modules"] == ["q_proj", "v_proj"]


def test_adalora_ranks_are_not_compared() -> None:
    config = load_adapter_config(json.dumps({"peft_type": "ADALORA", "r": 8, "target_modules": ["q_proj"]}))
    tensors = [
        *lora_pair("model.layers.0.self_attn.q_proj", 12, 64, 64),
        tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_E.weight", 12, 1),
    ]
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="adalora")
    assert report.status == "compatible", report.failures
    assert "AdaLoRA prunes the rank" in report.check("rank").message


def test_prompt_adapters_on_a_base_of_another_width() -> None:
    ptuning = check("ptuning-llama", "tiny-qwen2")
    assert failing(ptuning) == {"tensor_shapes"}
    assert ptuning.check("tensor_shapes").message == "token_dim is 64; the base's hidden size is 48"
    assert any("num_layers is 2 but the base has 3 layers" in w for w in ptuning.warnings)

    prefix = check("prefix-llama", "tiny-qwen2")
    assert failing(prefix) == {"tensor_shapes", "layer_indices"}
    assert prefix.check("tensor_shapes").message == (
        "token_dim is 32; the base's 2 key/value heads x head_dim 8 make 16"
    )
    assert prefix.check("layer_indices").message.startswith("adapter_config.json's num_layers is 2 but the base has 3")


def test_prompt_embeddings_that_disagree_with_the_config() -> None:
    config, _ = adapter("ptuning-llama")
    report = check_compatibility(
        config, [tensor("prompt_embeddings", 10, 64)], base("tiny-llama"), finetuning_type="p_tuning"
    )
    assert failing(report) == {"tensor_shapes"}
    assert "prompt_embeddings has 10 rows; num_virtual_tokens 8 x 1 transformer submodule make 8" in (
        report.check("tensor_shapes").message
    )
    missing = check_compatibility(config, [], base("tiny-llama"), finetuning_type="p_tuning")
    assert "has no prompt_embeddings tensor" in missing.check("tensor_shapes").message


def test_multimodal_base() -> None:
    """LLaVA's text_config leaves the Llama defaults out: the vision tower is skipped and what is missing is
    reported as not checked."""
    tensors = lora_pair("model.language_model.layers.0.self_attn.q_proj", 8, 4096, 4096) + lora_pair(
        "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj", 8, 1024, 1024
    )
    config = lora_config_json(target_modules=["q_proj"])
    report = check_compatibility(config, tensors, real_config("llava-1.5-7b-hf"), finetuning_type="lora")
    assert report.failures == []
    assert report.status == "unknown"
    assert any("vision or audio tower" in w for w in report.warnings)
    assert report.check("layer_indices").message == "not checked: the base config gives no number of layers"


def test_report_as_dict_is_json() -> None:
    report = check("broken-rank", base_model_name="modelyard-fixtures/tiny-llama")
    document = json.loads(json.dumps(report.as_dict()))
    assert document["status"] == "incompatible"
    assert [c["name"] for c in document["checks"]] == list(CHECK_NAMES)
    assert document["lora_config"]["rank"] == 8


def test_a_huge_hostile_adapter_is_checked_quickly_with_short_messages() -> None:
    targets = [f"m{i}" for i in range(100_000)]
    config = lora_config_json(target_modules=targets, rank_pattern={f"p{i}": 4 for i in range(100_000)})
    tensors = [t for i in range(5_000) for t in lora_pair(f"model.layers.{i}.self_attn.q_proj", 8, 64, 64)]
    start = time.perf_counter()
    report = check_compatibility(config, tensors, base("tiny-llama"), finetuning_type="lora")
    assert time.perf_counter() - start < 10  # well under a second when the machine is idle
    assert failing(report) == {"target_modules", "layer_indices"}
    assert all(len(c.message) < 2_000 for c in report.checks)
    assert len(report.warnings) == 1
    assert (
        "target_modules names modules that have no LoRA tensors in the adapter's files: m0, m1, m2 and "
        in (report.warnings[0])
    )
    assert "(and 4999 more modules like it)" in report.check("target_modules").message
    assert "the tensors are in layers 2-4999 (such as model.layers.2.self_attn.q_proj)" in (
        report.check("layer_indices").message
    )
