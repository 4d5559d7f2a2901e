"""DPO from the SFT adapter with TRL's ``DPOTrainer``: load the policy, build the trainer, save.

The policy is the base model with a fresh LoRA of the SFT adapter's shape (``models.loading.add_lora``,
so Unsloth's fast LoRA path on a GPU and the same 4-bit preparation as fine-tuning) into which the
SFT weights are loaded. The reference is the SFT policy itself: TRL 1.16, given a PEFT model and no
``ref_model``, copies the trained adapter ("default") into a frozen "ref" adapter and computes the
reference log-probabilities with it (``DPOTrainer.__init__``, ``use_adapter(model, "ref")``), so one
base model serves both and the reference is not the adapter-less base model.

``build_dpo_trainer`` takes an already-loaded model, so a GPU benchmark can time it on a 7B model
without this module loading anything. Heavy imports stay inside the functions (Unsloth first).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice

REFERENCE_ADAPTER = "ref"  # the name TRL gives the frozen copy of the SFT adapter
POLICY_ADAPTER = "default"


@dataclass
class DpoSettings:
    """Everything ``build_dpo_trainer`` needs besides the model, the tokenizer and the pairs."""

    choice: BackendChoice
    output_dir: str = ""  # the trainer's scratch folder (no checkpoints are saved); "": a temporary one, outside the run
    beta: float = 0.1
    learning_rate: float = 5e-6
    max_steps: int = 40
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 4
    max_length: int = 2048
    optim: str = "paged_adamw_32bit"
    gradient_checkpointing: str = "unsloth"
    seed: int = 3407
    warmup_ratio: float = 0.1
    sft_weight: float = 0.0  # > 0 adds the chosen responses' NLL with this weight (RPO, Pang et al. 2024)
    progress_bars: bool = False

    def to_dict(self) -> dict:
        out = asdict(self)
        out["choice"] = self.choice.summary()
        return out


def lora_shape(adapter_dir: str | Path) -> dict:
    """The SFT adapter's LoRA shape (``add_lora``'s keyword arguments but the checkpointing and seed)."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise UserError(f"{adapter_dir} holds no LoRA adapter (no adapter_config.json); run the fine-tuning notebook first")
    config = json.loads(path.read_text(encoding="utf-8"))
    targets = config["target_modules"]
    return {"r": int(config["r"]), "lora_alpha": int(config["lora_alpha"]), "lora_dropout": float(config.get("lora_dropout", 0.0)),
            "target_modules": sorted(targets) if isinstance(targets, (list, set)) else [targets]}


def load_policy(model_name: str, choice: BackendChoice, max_seq_length: int, adapter_dir: str | Path,
                gradient_checkpointing: str = "unsloth", seed: int = 3407, tokenizer_name: str = ""):
    """``(model, tokenizer)``: the base model with a trainable LoRA holding the SFT adapter's weights."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from ai2human.models.loading import add_lora, load_model

    shape = lora_shape(adapter_dir)
    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.is_file():
        raise UserError(f"{adapter_dir} has no adapter_model.safetensors; run the fine-tuning notebook again")
    model, tokenizer = load_model(model_name, choice, max_seq_length, tokenizer_name)
    model = add_lora(model, choice, gradient_checkpointing=gradient_checkpointing, seed=seed, **shape)
    result = set_peft_model_state_dict(model, load_file(str(weights)), adapter_name=POLICY_ADAPTER)
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if missing:
        raise UserError(f"{adapter_dir} does not fit {model_name}: {len(missing)} LoRA weights missing (e.g. {missing[0]})")
    return model, tokenizer


def build_dpo_trainer(model, tokenizer, pairs, settings: DpoSettings, callbacks: tuple = ()):
    """TRL's ``DPOTrainer`` on ``pairs`` (a DataFrame with ``prompt``, ``chosen``, ``rejected``:
    the Alpaca prompt and two responses; TRL appends EOS and trains on the responses only).

    ``model`` is a PEFT model whose "default" adapter is the SFT adapter (``load_policy``, or a
    benchmark's own); TRL adds the frozen "ref" copy. On backend unsloth, Unsloth's patched trainer
    is used (its import patches TRL's trainers; ``PatchDPOTrainer`` where the version still has it).
    """
    if settings.choice.backend == "unsloth":
        import unsloth  # noqa: F401  (patches TRL before it is imported below)

        try:
            from unsloth import PatchDPOTrainer
        except ImportError:  # newer Unsloth patches every TRL trainer on import
            pass
        else:
            PatchDPOTrainer()
    import datasets
    from trl import DPOConfig, DPOTrainer

    from ai2human.models.loading import parse_gradient_checkpointing
    from ai2human.train.sft_config import resolve_optim
    from ai2human.train.trainer import construct_trl_trainer

    if len(pairs) == 0:
        raise UserError("no preference pairs to train on: every input's samples tied or fell below dpo_min_margin; "
                        "raise dpo_k or dpo_temperature, lower dpo_min_margin, or use more dpo_rows")
    choice = settings.choice
    gc = parse_gradient_checkpointing(settings.gradient_checkpointing)
    optim, _ = resolve_optim(settings.optim, choice)
    args = DPOConfig(
        output_dir=settings.output_dir or tempfile.mkdtemp(prefix="ai2human-dpo-"),
        beta=settings.beta,
        # DPO alone lowers the chosen responses' likelihood too (only the gap must grow) and can drift
        # into degenerate text; a small NLL term on the chosen ones anchors it (RPO).
        loss_type=["sigmoid", "sft"] if settings.sft_weight > 0 else ["sigmoid"],
        loss_weights=[1.0, settings.sft_weight] if settings.sft_weight > 0 else None,
        learning_rate=settings.learning_rate,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        lr_scheduler_type="linear",
        warmup_steps=settings.warmup_ratio,  # below 1: a fraction of max_steps (transformers 5 folded warmup_ratio in)
        optim=optim,
        seed=settings.seed,
        logging_steps=1,  # rewards/margins per step: the report plots them
        save_strategy="no",  # the notebook saves the final adapter; a DPO run is short
        report_to="none",
        bf16=choice.dtype == "bfloat16",
        fp16=choice.dtype == "float16",
        gradient_checkpointing=bool(gc),
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc and choice.backend == "hf" else None,
        dataloader_pin_memory=choice.device == "cuda",
        disable_tqdm=not settings.progress_bars,
    )
    dataset = datasets.Dataset.from_pandas(pairs[["prompt", "chosen", "rejected"]].reset_index(drop=True), preserve_index=False)
    return construct_trl_trainer(DPOTrainer, choice, model=model, args=args, train_dataset=dataset,
                                 processing_class=tokenizer, callbacks=list(callbacks))


def save_dpo_adapter(model, tokenizer, path: str | Path) -> Path:
    """The trained policy adapter alone (not TRL's "ref" copy), loadable like the SFT adapter."""
    path = Path(path)
    model.save_pretrained(str(path), selected_adapters=[POLICY_ADAPTER])
    tokenizer.save_pretrained(str(path))
    return path


def training_log(trainer) -> list[dict]:
    """The trainer's per-step records (loss, rewards/margins, rewards/chosen...), summary record left out."""
    return [dict(r) for r in trainer.state.log_history if "loss" in r and "train_runtime" not in r]
