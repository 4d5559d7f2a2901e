"""TRL's ``SFTConfig`` from ``TrainSettings``, and the options that depend on the hardware.

Heavy imports (TRL, transformers) stay inside the functions: Unsloth must be imported before them
to patch them, and the notebook's setup cell decides whether Unsloth is used.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ai2human.errors import UserError
from ai2human.models.loading import parse_gradient_checkpointing
from ai2human.rundir import CHECKPOINTS

# Optimizers whose state lives in bitsandbytes (CUDA only).
_BNB_OPTIM = re.compile(r"(8bit|paged)")
# Orders a Trainer can draw training examples in (TrainingArguments.train_sampling_strategy).
TRAIN_SAMPLING = ("random", "group_by_length", "batch_rebalance")
# per_device_eval_batch_size 0 = this many times the training micro-batch. Evaluation keeps no
# activations for a backward pass, so a larger batch fits where training's does; eval examples are
# also sorted by length (recipe.sort_by_length) so these larger batches carry little padding.
EVAL_BATCH_FACTOR = 2


def resolve_optim(optim: str, choice) -> tuple[str, str]:
    """The optimizer to use and a note: bitsandbytes optimizers (8-bit, paged) need CUDA and bitsandbytes."""
    if not _BNB_OPTIM.search(optim):
        return optim, ""
    if choice.device != "cuda":
        return "adamw_torch", f"optim {optim!r} needs bitsandbytes on a CUDA GPU: using adamw_torch on this {choice.device}"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "adamw_torch", f"optim {optim!r} needs bitsandbytes, which is not installed: using adamw_torch"
    return optim, ""


def check_batching(choice, model, packing: bool, padding_free: bool) -> list[str]:
    """Notes on packing / padding-free for this backend.

    Both put several examples in one row. Unsloth handles that itself. With transformers + PEFT,
    flash-attention separates the examples with its variable-length kernels; with SDPA or eager
    attention, transformers 5 builds a block-diagonal mask from the position ids instead, which is
    correct but saves no compute, so we say so rather than refuse.
    """
    if not (packing or padding_free):
        return []
    what = "packing" if packing else "padding_free"
    if choice.backend == "unsloth":
        return [f"{what}: handled by Unsloth"]
    attn = str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")
    if "flash" in attn:
        return [f"{what}: flash-attention ({attn}) keeps the examples of a row apart"]
    return [
        f"{what} with {attn or 'default'} attention (no flash-attention here): transformers masks across examples "
        "from the position ids, so the loss is right, but it saves no compute; padding_free: false is as fast here"
    ]


def eval_batch_size(settings, per_device_train_batch_size: int) -> int:
    """The evaluation micro-batch: the setting, or EVAL_BATCH_FACTOR x the training one for 0 (auto)."""
    return settings.per_device_eval_batch_size or EVAL_BATCH_FACTOR * per_device_train_batch_size


def check_settings(settings, has_eval: bool) -> bool:
    """Refuse combinations the trainer cannot run; returns whether evaluation runs.

    The params rules check these before a run starts; this is the second line for a notebook run
    by hand or a settings object built in code.
    """
    if settings.max_steps < 0:
        raise UserError(f"max_steps must be >= 0 (0 = train for num_train_epochs), got {settings.max_steps}")
    if settings.max_steps == 0 and settings.num_train_epochs <= 0:
        raise UserError("max_steps is 0, so num_train_epochs decides the length; it must be > 0")
    evaluate = has_eval and settings.eval_steps > 0
    if settings.early_stopping_patience > 0:
        if not evaluate:
            raise UserError("early_stopping_patience needs evaluation: set val_size > 0 and eval_steps > 0, or early_stopping_patience: 0")
        if settings.save_steps != settings.eval_steps:
            raise UserError(
                f"early_stopping_patience keeps the best checkpoint, so checkpoints must be saved when evaluating: "
                f"set save_steps equal to eval_steps ({settings.eval_steps}), now {settings.save_steps}"
            )
    if settings.train_sampling not in TRAIN_SAMPLING:
        raise UserError(f"train_sampling must be one of {', '.join(TRAIN_SAMPLING)}, got {settings.train_sampling!r}")
    return evaluate


def build_sft_config(settings, *, has_eval: bool, optim: str | None = None):
    """TRL's ``SFTConfig`` for ``settings`` (a ``TrainSettings``), with our conventions applied.

    ``max_steps = 0`` trains for ``num_train_epochs``; ``eval_steps`` / ``save_steps`` below 1 are
    a fraction of the run (0.2 = every 20%), 0 turns evaluation / checkpoints off. Checkpoints go
    to ``run_dir/checkpoints``. ``early_stopping_patience > 0`` stops after that many evaluations
    without a better eval loss and keeps the best checkpoint's adapter. The batch and accumulation
    are the per-process ones of ``settings.topology()``; ``optim`` replaces ``settings.optim``
    (``resolve_optim``'s choice).
    """
    from trl import SFTConfig

    evaluate = check_settings(settings, has_eval)
    choice = settings.choice
    topology = settings.topology()
    gc = parse_gradient_checkpointing(settings.gradient_checkpointing)
    run_dir = Path(settings.run_dir)
    patience = settings.early_stopping_patience
    # Our tokenisation already enforces max_seq_length. TRL refuses padding-free without packing
    # while max_length is set (it cannot cut a flattened batch), so hand it None then; Unsloth
    # expects max_length and arranges padding-free itself.
    hf_padding_free = settings.padding_free and not settings.packing and choice.backend == "hf"
    return SFTConfig(
        output_dir=str(run_dir / CHECKPOINTS),
        run_name=run_dir.name,
        report_to=settings.report_to,
        seed=settings.seed,
        max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        num_train_epochs=settings.num_train_epochs,
        per_device_train_batch_size=topology.per_device_train_batch_size,
        per_device_eval_batch_size=eval_batch_size(settings, topology.per_device_train_batch_size),
        # group_by_length draws steps of similar lengths, so short micro-batches are not padded to a
        # long neighbour; docs/benchmarks.md has what it gave with each micro-batch size.
        train_sampling_strategy=settings.train_sampling,
        gradient_accumulation_steps=topology.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=settings.warmup_steps,
        optim=optim or settings.optim,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        logging_steps=settings.logging_steps,
        logging_first_step=True,  # the step-1 loss anchors the "did the loss fall" diagnostic
        # By default a NaN/inf loss is logged as the running mean, which hides a diverged run from
        # the log and from guards.FiniteGuard.
        logging_nan_inf_filter=False,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=settings.eval_steps if evaluate else None,
        save_strategy="steps" if settings.save_steps > 0 else "no",
        save_steps=settings.save_steps if settings.save_steps > 0 else 500,
        save_total_limit=settings.save_total_limit if settings.save_total_limit > 0 else None,
        load_best_model_at_end=patience > 0,
        metric_for_best_model="eval_loss" if patience > 0 else None,
        greater_is_better=False if patience > 0 else None,
        bf16=choice.dtype == "bfloat16",
        fp16=choice.dtype == "float16",
        # TRL turns checkpointing on by default; follow the parameter instead. Unsloth reads its
        # own setting from the model (add_lora) and only needs to know it is on.
        gradient_checkpointing=bool(gc),
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc and choice.backend == "hf" else None,
        max_length=None if hf_padding_free else settings.max_seq_length,
        packing=settings.packing,
        padding_free=settings.padding_free,
        include_num_input_tokens_seen="non_padding",  # tokens/s over the training steps (trainer.PhaseClock)
        dataloader_num_workers=0,
        # LoRA uses every trainable weight in each step, so DDP (distributed.py) need not search the
        # graph for unused ones; the search it does by default for a PEFT model costs time each step.
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=choice.device == "cuda",
        disable_tqdm=not settings.progress_bars,
        push_to_hub=False,  # the notebook pushes the adapter alone, at the end
    )
