"""gen_lora: while generating, an active LoRA adds its update in 16-bit kernels, with PEFT's answers."""

import pytest
import torch

from ai2human.evaluate.gen_lora import fused_lora
from ai2human.evaluate.generation import generate
from ai2human.data.prompts import format_prompt
from ai2human.models.hardware import choose_backend, detect_hardware
from ai2human.models.loading import load_model
from ai2human.models.tiny import TINY_MODEL_NAME

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def lora_model():
    """The tiny model with a v5-shaped LoRA whose B is not zero (a fresh LoRA adds nothing to compare)."""
    from peft import LoraConfig, get_peft_model

    choice = choose_backend("auto", detect_hardware(), load_in_4bit=False)
    model, tokenizer = load_model(TINY_MODEL_NAME, choice, 512)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.eval()
    return model, tokenizer


def _logits(model, tokenizer, text):
    batch = tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


def test_fused_update_is_peft_update(lora_model):
    model, tokenizer = lora_model
    text = format_prompt("Moreover, this approach underscores the importance of balance.")
    peft_logits = _logits(model, tokenizer, text)
    with model.disable_adapter():
        base_logits = _logits(model, tokenizer, text)
    assert not torch.allclose(peft_logits, base_logits, atol=1e-3)  # the adapter does change the answer
    with fused_lora(model) as fused:
        fused_logits = _logits(model, tokenizer, text)
    assert fused == len(TARGETS) * model.config.num_hidden_layers
    torch.testing.assert_close(fused_logits, peft_logits, rtol=1e-4, atol=1e-4)
    assert not any("forward" in m.__dict__ for m in model.modules())  # PEFT's forward is back


def test_disabled_adapters_and_training_dropout_are_left_to_peft(lora_model):
    model, _ = lora_model
    with model.disable_adapter(), fused_lora(model) as fused:
        assert fused == 0  # the base pass
    with fused_lora(model, enabled=False) as fused:
        assert fused == 0
    layer = next(m for m in model.modules() if hasattr(m, "lora_dropout"))
    name = layer.active_adapters[0]
    saved = layer.lora_dropout[name]
    layer.lora_dropout[name] = torch.nn.Dropout(0.1)
    layer.train()
    try:
        with fused_lora(model) as fused:
            assert fused == len(TARGETS) * model.config.num_hidden_layers - 1  # dropout that would drop stays PEFT's
    finally:
        layer.lora_dropout[name] = saved
        layer.eval()


def test_generate_fuses_the_adapter_and_keeps_every_token(lora_model, monkeypatch):
    model, tokenizer = lora_model
    prompts = [format_prompt(t) for t in ("Short one.", "In today's fast-paced world, technology plays a crucial role.")]
    fused = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=2, engine="static")
    assert fused.settings["lora_fused_layers"] == len(TARGETS) * model.config.num_hidden_layers
    from ai2human.evaluate import generation

    monkeypatch.setattr(generation, "fused_lora", lambda model, enabled=True: fused_lora(model, enabled=False))
    plain = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=2, engine="static")
    assert plain.settings["lora_fused_layers"] == 0
    assert fused.token_ids == plain.token_ids
