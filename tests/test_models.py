"""models: loading the tiny model, attaching LoRA, saving and reloading an adapter (CPU, hf backend)."""

from __future__ import annotations

import pytest
import torch

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.models.loading import (
    DEFAULT_TARGET_MODULES,
    adapter_base_model,
    add_lora,
    load_for_inference,
    load_model,
    parse_gradient_checkpointing,
    parse_target_modules,
)
from ai2human.models.tiny import TINY_CONFIG, TINY_MODEL_NAME

CPU = BackendChoice("hf", "float32", False, "cpu")


def lora(model, gradient_checkpointing="false", r=4, modules=DEFAULT_TARGET_MODULES):
    return add_lora(model, CPU, r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=list(modules),
                    gradient_checkpointing=gradient_checkpointing, seed=0)


def test_parse_target_modules():
    assert parse_target_modules("q_proj, k_proj,,v_proj ") == ["q_proj", "k_proj", "v_proj"]
    assert parse_target_modules(["o_proj"]) == ["o_proj"]
    with pytest.raises(UserError):
        parse_target_modules(" , ")


def test_parse_gradient_checkpointing_reads_strings():
    assert parse_gradient_checkpointing("unsloth") == "unsloth"
    assert parse_gradient_checkpointing("True") is True
    assert parse_gradient_checkpointing("false") is False  # bool("false") would be True
    assert parse_gradient_checkpointing(False) is False
    with pytest.raises(UserError, match="unsloth, true, false"):
        parse_gradient_checkpointing("sometimes")


def test_load_model_gives_an_fp32_qwen2_and_a_padded_tokenizer():
    model, tokenizer = load_model(TINY_MODEL_NAME, CPU, 1024)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.pad_token is not None and tokenizer.eos_token == "<|endoftext|>"


def test_add_lora_trains_only_the_adapters():
    model, _ = load_model(TINY_MODEL_NAME, CPU, 1024)
    model = lora(model, r=4)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    h, i = TINY_CONFIG["hidden_size"], TINY_CONFIG["intermediate_size"]
    kv = h // TINY_CONFIG["num_attention_heads"] * TINY_CONFIG["num_key_value_heads"]
    # r x (in + out) per adapted matrix: q, k, v, o, gate, up, down
    per_layer = 4 * ((h + h) + (h + kv) + (h + kv) + (h + h) + (h + i) + (h + i) + (i + h))
    assert sum(trainable.values()) == per_layer * TINY_CONFIG["num_hidden_layers"]


def test_gradient_checkpointing_follows_the_parameter():
    model, _ = load_model(TINY_MODEL_NAME, CPU, 1024)
    assert lora(model, "true").base_model.model.is_gradient_checkpointing
    model, _ = load_model(TINY_MODEL_NAME, CPU, 1024)
    assert not lora(model, "false").base_model.model.is_gradient_checkpointing


def test_adapter_round_trip_and_disable_adapter(tmp_path):
    model, tokenizer = load_model(TINY_MODEL_NAME, CPU, 1024)
    base_logits = model(torch.tensor([[5, 6, 7, 8]])).logits
    model = lora(model, modules=["q_proj", "v_proj"])
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B starts at zero: make the adapter change the output
            p.data.normal_(0, 0.5)
    ids = torch.tensor([[5, 6, 7, 8]])
    tuned_logits = model(ids).logits
    assert not torch.allclose(tuned_logits, base_logits)
    model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")

    assert adapter_base_model(tmp_path / "adapter")  # the base model recorded by PEFT
    loaded, _ = load_for_inference(TINY_MODEL_NAME, CPU, 1024, adapter_dir=tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, tuned_logits, atol=1e-5)
        with loaded.disable_adapter():
            assert torch.allclose(loaded(ids).logits, base_logits, atol=1e-5)


def test_adapter_base_model_explains_a_missing_adapter(tmp_path):
    with pytest.raises(UserError, match="fine-tuning notebook"):
        adapter_base_model(tmp_path)


@pytest.mark.slow  # builds a fresh tiny model in a new process
def test_building_and_loading_the_tiny_model_prints_nothing_to_stderr(tmp_path):
    """What lands on stderr lands in a report's red box ("Writing model shards", "Loading weights")."""
    import subprocess
    import sys

    code = (
        "from ai2human.models.tiny import build_tiny_model; from ai2human.models.loading import load_model, load_tokenizer\n"
        "from ai2human.models.hardware import BackendChoice\n"
        "from transformers.utils import logging\n"
        "build_tiny_model()\n"
        "load_model('local:tiny-qwen2', BackendChoice('hf', 'float32', False, 'cpu'), 64)\n"
        "load_tokenizer('local:tiny-qwen2')\n"
        "assert logging.is_progress_bar_enabled(), 'progress bars are restored after loading'\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ, "AI2HUMAN_CACHE": str(tmp_path)}  # a fresh build, not the cached one
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
    assert proc.stderr == "", proc.stderr[-2000:]
