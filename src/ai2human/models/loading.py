"""Load the base model, attach LoRA, load a trained adapter: one place for both backends.

The fine-tuning notebook, the evaluation notebook, the chat app and the GPU benchmark all load
models through these functions, so the Unsloth and transformers + PEFT paths build the same
LoRA from the same parameters. Heavy imports stay inside the functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.models.quiet import quiet_loading
from ai2human.models.tiny import resolve_model_name

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GRADIENT_CHECKPOINTING = ("unsloth", "true", "false")


def parse_gradient_checkpointing(value: str | bool) -> str | bool:
    """``"unsloth"`` (Unsloth's offloaded variant; plain checkpointing on backend hf), ``"true"`` or ``"false"``.

    Parameters are flat strings, and ``bool("false")`` is True, hence the explicit parse.
    """
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v not in GRADIENT_CHECKPOINTING:
        raise UserError(f"gradient_checkpointing must be one of {', '.join(GRADIENT_CHECKPOINTING)}, got {value!r}")
    return "unsloth" if v == "unsloth" else v == "true"


def parse_target_modules(value: str | list | tuple) -> list[str]:
    """``"q_proj,k_proj"`` or a list -> list of module names (params files keep it a flat string)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    modules = [m.strip() for m in items if m.strip()]
    if not modules:
        raise UserError("lora_target_modules is empty; list modules such as q_proj,k_proj,v_proj,o_proj")
    return modules


def load_tokenizer(model_name: str, tokenizer_name: str = ""):
    from transformers import AutoTokenizer

    path = resolve_model_name(tokenizer_name or model_name)
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_name: str,
    choice: BackendChoice,
    max_seq_length: int,
    tokenizer_name: str = "",
):
    """Return ``(model, tokenizer)`` for training or inference, per ``choice`` (see hardware.py)."""
    path = resolve_model_name(model_name)
    if choice.backend == "unsloth":
        from unsloth import FastLanguageModel

        with quiet_loading():
            model, tokenizer = FastLanguageModel.from_pretrained(
                model_name=path,
                max_seq_length=max_seq_length,
                dtype=choice.torch_dtype(),
                load_in_4bit=choice.load_in_4bit,
            )
        if tokenizer_name:
            tokenizer = load_tokenizer(model_name, tokenizer_name)
        return model, tokenizer

    from transformers import AutoModelForCausalLM

    kwargs = dict(dtype=choice.torch_dtype())
    if choice.device == "cuda":
        # One GPU per process: LOCAL_RANK is set by accelerate launch (distributed.py), else GPU 0.
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
        if choice.load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=choice.torch_dtype(),
            )
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model, load_tokenizer(model_name, tokenizer_name)


def add_lora(
    model,
    choice: BackendChoice,
    r: int,
    lora_alpha: int,
    lora_dropout: float,
    target_modules: list[str],
    gradient_checkpointing: str | bool,
    seed: int,
):
    """Wrap ``model`` with the same LoRA on either backend; returns the PEFT model."""
    gradient_checkpointing = parse_gradient_checkpointing(gradient_checkpointing)
    if choice.backend == "unsloth":
        from unsloth import FastLanguageModel

        return FastLanguageModel.get_peft_model(
            model,
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=list(target_modules),
            bias="none",
            use_gradient_checkpointing=gradient_checkpointing,  # "unsloth" offloads activations
            random_state=seed,
        )

    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    use_gc = bool(gradient_checkpointing)
    if choice.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=use_gc,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif use_gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    torch.manual_seed(seed)  # LoRA A matrices are initialised randomly
    config = LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_base_model(adapter_dir: str | Path) -> str:
    """The base model name recorded in an adapter's ``adapter_config.json``."""
    config = Path(adapter_dir) / "adapter_config.json"
    if not config.is_file():
        raise UserError(f"{adapter_dir} holds no LoRA adapter (no adapter_config.json); run the fine-tuning notebook first")
    return json.loads(config.read_text())["base_model_name_or_path"]


def load_for_inference(
    model_name: str,
    choice: BackendChoice,
    max_seq_length: int,
    adapter_dir: str | Path | None = None,
    tokenizer_name: str = "",
):
    """``(model, tokenizer)`` ready to generate; with ``adapter_dir`` the LoRA is attached.

    The adapter stays a separate PEFT layer, so ``model.disable_adapter()`` gives the base model's
    answers from the same weights (the evaluation compares both without loading twice).
    """
    model, tokenizer = load_model(model_name, choice, max_seq_length, tokenizer_name)
    if adapter_dir is not None:
        adapter_base_model(adapter_dir)  # clear error when the folder is not an adapter
        from peft import PeftModel

        with quiet_loading():
            model = PeftModel.from_pretrained(model, str(adapter_dir))
    if choice.backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    return model, tokenizer
