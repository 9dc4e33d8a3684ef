"""Build the adapter fixtures of tests/fixtures/adapters/ with the real transformers and peft libraries.

Run once by hand, in a separate environment (these libraries are not modelyard dependencies):

    python -m venv /tmp/peftenv && /tmp/peftenv/bin/pip install torch transformers peft
    /tmp/peftenv/bin/python scripts/make_peft_fixtures.py

Tiny base models are built from configs with random weights (nothing is downloaded and nothing is trained), and
adapters are created on them with `get_peft_model` and written with `save_pretrained`. The broken fixtures are made
the same way, on a base that differs from the one their adapter_config.json names, or edited afterwards where
the README says so. Seeds are fixed; `target_modules` lists (saved from a Python set) are sorted so the output does
not depend on the hash seed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # peft's save_pretrained may otherwise ask the Hub about the base

import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, PrefixTuningConfig, PromptEncoderConfig, TaskType, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    Phi3Config,
    PretrainedConfig,
    Qwen2Config,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "adapters"
NAMESPACE = "modelyard-fixtures"


def llama_config(**overrides: Any) -> LlamaConfig:
    values: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 128,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
    }
    values.update(overrides)
    return LlamaConfig(**values)


def qwen2_config() -> Qwen2Config:
    return Qwen2Config(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        vocab_size=96,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )


def gpt2_config() -> GPT2Config:
    return GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=96, n_positions=64, bos_token_id=0, eos_token_id=0)


def phi3_config() -> Phi3Config:
    # The same dimensions as the tiny Llama, but Phi-3 fuses q/k/v into qkv_proj and gate/up into gate_up_proj.
    return Phi3Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )


BASES: dict[str, Callable[[], PretrainedConfig]] = {
    "tiny-llama": llama_config,
    "tiny-qwen2": qwen2_config,
    "tiny-gpt2": gpt2_config,
}


def build(config: PretrainedConfig, name_or_path: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    # What get_peft_model records as base_model_name_or_path (a Hub id, as if loaded with from_pretrained).
    model.name_or_path = name_or_path
    return model


def save_adapter(name: str, base: str, config: PretrainedConfig, peft_config: Any, *, seed: int) -> Path:
    model = build(config, f"{NAMESPACE}/{base}", seed)
    peft_model = get_peft_model(model, peft_config)
    target = OUT / name
    if target.exists():
        shutil.rmtree(target)
    peft_model.save_pretrained(str(target), save_embedding_layers=False)
    (target / "README.md").unlink(missing_ok=True)  # the model card template: large and says nothing here
    edit_config(target, lambda c: c)  # sort target_modules
    return target


def edit_config(directory: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    path = directory / "adapter_config.json"
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config = change(config)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_base(name: str, config: PretrainedConfig) -> None:
    target = OUT / "bases" / name
    target.mkdir(parents=True, exist_ok=True)
    config.architectures = [
        {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gpt2": "GPT2LMHeadModel"}[config.model_type]
    ]
    config._name_or_path = f"{NAMESPACE}/{name}"
    config.to_json_file(str(target / "config.json"), use_diff=False)


def main() -> None:
    for name, make in BASES.items():
        save_base(name, make())

    lora = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "task_type": TaskType.CAUSAL_LM}

    # Compatible adapters.
    save_adapter(
        "lora-llama", "tiny-llama", llama_config(), LoraConfig(target_modules=["q_proj", "v_proj"], **lora), seed=1
    )
    save_adapter(
        "lora-qwen2",
        "tiny-qwen2",
        qwen2_config(),
        LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            rank_pattern={"down_proj": 2},
            alpha_pattern={"down_proj": 4},
            task_type=TaskType.CAUSAL_LM,
        ),
        seed=2,
    )
    save_adapter(
        "lora-gpt2",
        "tiny-gpt2",
        gpt2_config(),
        LoraConfig(target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, **lora),
        seed=3,
    )
    save_adapter(
        "dora-llama",
        "tiny-llama",
        llama_config(),
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            use_dora=True,
            task_type=TaskType.CAUSAL_LM,
        ),
        seed=4,
    )
    save_adapter(
        "ptuning-llama",
        "tiny-llama",
        llama_config(),
        PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8, encoder_hidden_size=32),
        seed=5,
    )
    save_adapter(
        "prefix-llama",
        "tiny-llama",
        llama_config(),
        PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4),
        seed=6,
    )

    # Broken adapters: each names tiny-llama as its base in adapter_config.json.
    save_adapter(
        "broken-hidden-size",
        "tiny-llama",
        llama_config(hidden_size=96, intermediate_size=192),
        LoraConfig(target_modules=["q_proj", "v_proj"], **lora),
        seed=7,
    )
    save_adapter(
        "broken-target-module",
        "tiny-llama",
        phi3_config(),
        LoraConfig(target_modules=["qkv_proj", "o_proj"], **lora),
        seed=8,
    )
    broken_rank = save_adapter(
        "broken-rank",
        "tiny-llama",
        llama_config(),
        LoraConfig(**{**lora, "r": 4}, target_modules=["q_proj", "v_proj"]),
        seed=9,
    )
    edit_config(broken_rank, lambda c: {**c, "r": 8})
    save_adapter(
        "broken-layer-index",
        "tiny-llama",
        llama_config(num_hidden_layers=4),
        LoraConfig(target_modules=["q_proj", "v_proj"], **lora),
        seed=10,
    )

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
        f"safetensors {safetensors.__version__}, python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
