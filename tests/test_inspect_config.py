"""The spec read from real config.json files of public models, and the configs validate_config refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import modelyard.inspect
from modelyard.inspect import InspectError, load_config, model_spec, normalize_dtype, validate_config
from modelyard.inspect.config import SPEC_KEYS

CONFIGS = Path(__file__).parent / "fixtures" / "configs"

# Written out by hand from the models' documentation and architecture, not computed by the code under test.
EXPECTED: dict[str, dict[str, Any]] = {
    "llama-3.2-1b.json": {
        "architecture": "LlamaForCausalLM",
        "family": "llama",
        "num_layers": 16,
        "hidden_size": 2048,
        "num_attention_heads": 32,
        "num_kv_heads": 8,
        "head_dim": 64,
        "intermediate_size": 8192,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "dtype": "bfloat16",
    },
    "qwen2.5-0.5b.json": {
        "architecture": "Qwen2ForCausalLM",
        "family": "qwen2",
        "num_layers": 24,
        "hidden_size": 896,
        "num_attention_heads": 14,
        "num_kv_heads": 2,
        "head_dim": 64,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "dtype": "bfloat16",
    },
    "qwen3-8b.json": {
        "architecture": "Qwen3ForCausalLM",
        "family": "qwen3",
        "num_layers": 36,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_kv_heads": 8,
        "head_dim": 128,
        "intermediate_size": 12288,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "dtype": "bfloat16",
    },
    "mistral-7b-v0.1.json": {
        "architecture": "MistralForCausalLM",
        "family": "mistral",
        "num_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_kv_heads": 8,
        "head_dim": 128,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "dtype": "bfloat16",
    },
    # head_dim 256 is explicit: 1152 / 4 heads would be 288.
    "gemma-3-1b-it.json": {
        "architecture": "Gemma3ForCausalLM",
        "family": "gemma3_text",
        "num_layers": 26,
        "hidden_size": 1152,
        "num_attention_heads": 4,
        "num_kv_heads": 1,
        "head_dim": 256,
        "intermediate_size": 6912,
        "vocab_size": 262144,
        "max_position_embeddings": 32768,
        "dtype": "bfloat16",
    },
    # GPT-2 names: n_layer, n_embd, n_head, n_positions; no kv heads (multi-head attention); n_inner null = 4 x 768.
    "gpt2.json": {
        "architecture": "GPT2LMHeadModel",
        "family": "gpt2",
        "num_layers": 12,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "num_kv_heads": 12,
        "head_dim": 64,
        "intermediate_size": 3072,
        "vocab_size": 50257,
        "max_position_embeddings": 1024,
        "dtype": "float32",
    },
    # The Hub's gpt2-large file has no n_inner at all and no torch_dtype.
    "gpt2-large.json": {
        "architecture": "GPT2LMHeadModel",
        "family": "gpt2",
        "num_layers": 36,
        "hidden_size": 1280,
        "num_attention_heads": 20,
        "num_kv_heads": 20,
        "head_dim": 64,
        "intermediate_size": 5120,
        "vocab_size": 50257,
        "max_position_embeddings": 1024,
        "dtype": None,
    },
    # The language model is in text_config, which leaves LlamaConfig's defaults out: those stay null, and the
    # vision tower's hidden size (1024) must not be taken for the model's.
    "llava-1.5-7b-hf.json": {
        "architecture": "LlavaForConditionalGeneration",
        "family": "llava",
        "num_layers": None,
        "hidden_size": None,
        "num_attention_heads": None,
        "num_kv_heads": None,
        "head_dim": None,
        "intermediate_size": None,
        "vocab_size": 32064,
        "max_position_embeddings": 4096,
        "dtype": "float16",
    },
}


def test_every_fixture_config_has_expected_values() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_spec_of_real_config(fixture: str) -> None:
    config = load_config((CONFIGS / fixture).read_bytes(), name=fixture)

    spec = model_spec(config, num_parameters=None, dtype=None)

    assert spec == {**EXPECTED[fixture], "num_parameters": None}
    assert tuple(spec) == SPEC_KEYS


def test_weights_decide_parameters_and_dtype() -> None:
    config = json.loads((CONFIGS / "mistral-7b-v0.1.json").read_text())

    spec = model_spec(config, num_parameters=7_241_732_096, dtype="float16")

    assert spec["num_parameters"] == 7_241_732_096
    assert spec["dtype"] == "float16"


def test_multimodal_config_reads_text_config_and_names_the_whole_model() -> None:
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": {
            "head_dim": 256,
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "max_position_embeddings": 131072,
            "model_type": "gemma3_text",
            "num_attention_heads": 8,
            "num_hidden_layers": 34,
            "num_key_value_heads": 4,
            "vocab_size": 262208,
        },
        "torch_dtype": "bfloat16",
        "vision_config": {"hidden_size": 1152, "num_attention_heads": 16, "num_hidden_layers": 27},
    }
    validate_config(config)

    spec = model_spec(config, num_parameters=None, dtype=None)

    assert spec == {
        "architecture": "Gemma3ForConditionalGeneration",
        "family": "gemma3",
        "num_layers": 34,
        "hidden_size": 2560,
        "num_attention_heads": 8,
        "num_kv_heads": 4,
        "head_dim": 256,
        "intermediate_size": 10240,
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "num_parameters": None,
        "dtype": "bfloat16",
    }


@pytest.mark.parametrize(
    ("config", "kv_heads"),
    [
        ({"model_type": "falcon", "hidden_size": 4544, "n_head": 71, "multi_query": True}, 1),
        (
            {
                "model_type": "chatglm",
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "multi_query_attention": True,
                "multi_query_group_num": 2,
            },
            2,
        ),
        ({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": None}, 32),
    ],
)
def test_kv_heads_the_architecture_implies(config: dict[str, Any], kv_heads: int) -> None:
    assert model_spec(config, num_parameters=None, dtype=None)["num_kv_heads"] == kv_heads


def test_missing_values_are_null_not_invented() -> None:
    spec = model_spec({"model_type": "llama"}, num_parameters=None, dtype=None)

    assert spec == dict.fromkeys(SPEC_KEYS) | {"family": "llama"}


def test_model_spec_ignores_values_of_the_wrong_type() -> None:
    config = {"architectures": "Llama", "hidden_size": "4096", "num_hidden_layers": True, "vocab_size": -1}

    spec = model_spec(config, num_parameters=-5, dtype="auto")

    assert spec == dict.fromkeys(SPEC_KEYS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("bfloat16", "bfloat16"), ("torch.float16", "float16"), ("half", "float16"), ("auto", None), (3, None)],
)
def test_normalize_dtype(value: object, expected: str | None) -> None:
    assert normalize_dtype(value) == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "must hold a JSON object, not a list"),
        ("llama", "must hold a JSON object, not a string"),
        (None, "must hold a JSON object, not null"),
        ({"hidden_size": -4096}, "'hidden_size' must be a positive integer, not -4096"),
        ({"num_hidden_layers": 0}, "'num_hidden_layers' must be a positive integer, not 0"),
        ({"n_embd": 76.8}, "'n_embd' must be a positive integer"),
        ({"num_attention_heads": "32"}, "'num_attention_heads' must be a positive integer"),
        ({"vocab_size": True}, "'vocab_size' must be a positive integer"),
        ({"max_position_embeddings": 2**60}, "'max_position_embeddings' must be a positive integer"),
        ({"hidden_size": 4096, "num_attention_heads": 30}, "not divisible by the 30 attention heads"),
        ({"num_attention_heads": 8, "num_key_value_heads": 16}, "8 attention heads cannot be shared by 16"),
        ({"num_attention_heads": 32, "num_key_value_heads": 6}, "32 attention heads cannot be shared by 6"),
        ({"architectures": "LlamaForCausalLM"}, "'architectures' must be a list of class names"),
        ({"architectures": [1]}, "'architectures' must be a list of class names"),
        ({"model_type": 7}, "'model_type' must be a non-empty string"),
        ({"torch_dtype": 16}, "'torch_dtype' must be a string"),
        ({"text_config": [1, 2]}, "'text_config' must be an object, not a list"),
        ({"text_config": {"hidden_size": 0}}, "'hidden_size' must be a positive integer, not 0"),
    ],
)
def test_validate_config_refuses_nonsense(config: Any, message: str) -> None:
    with pytest.raises(InspectError, match=r"config\.json") as caught:
        validate_config(config)
    assert message in str(caught.value)


def test_validate_config_accepts_explicit_head_dim_that_does_not_divide() -> None:
    validate_config({"hidden_size": 5120, "num_attention_heads": 32, "head_dim": 128, "num_key_value_heads": 8})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
        (b"[1, 2]", "must hold a JSON object, not a list"),
        (b"[" * 100_000 + b"]" * 100_000, "config.json"),
        (b" " * (16 * 1024 * 1024 + 1), "more than the 16 MiB"),
    ],
)
def test_load_config_refuses_unreadable_files(data: bytes, message: str) -> None:
    with pytest.raises(InspectError) as caught:
        load_config(data, name="config.json")
    assert message in str(caught.value)


def test_public_surface() -> None:
    assert len(set(modelyard.inspect.__all__)) == len(modelyard.inspect.__all__)
    for name in modelyard.inspect.__all__:
        assert getattr(modelyard.inspect, name) is not None
