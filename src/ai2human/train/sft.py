"""Fine-tuning: tokenise with response-only labels, build the SFT config and trainer, checkpoints, logs.

The fine-tuning notebook and the GPU benchmark both train through these functions, so a number
the benchmark reports is a number the notebook would reach. Heavy imports (torch, transformers,
TRL) stay inside the functions: Unsloth must be imported before them to patch them, and the
notebook's setup cell decides whether Unsloth is used.

Why we tokenise ourselves instead of handing TRL a prompt/completion dataset: a dataset that
already holds ``input_ids`` and ``labels`` is used as is by TRL's SFTTrainer (1.15+) *and* by
Unsloth's patched trainer (which switches to a padding collator that keeps our labels), so both
backends train on exactly the tokens and masks the notebook shows. It also lets us count and drop
over-long examples before the trainer sees them, and tokenise the prompt and response in one pass
(tokenising them separately can split the boundary differently from the full text).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from ai2human.errors import UserError
from ai2human.rundir import CHECKPOINTS
from ai2human.models.loading import parse_gradient_checkpointing
from ai2human.data.prompts import format_example, format_prompt

IGNORE_INDEX = -100  # label value the loss skips (PyTorch's cross-entropy default)
OVERLONG_MODES = ("drop", "truncate")
# Optimizers whose state lives in bitsandbytes (CUDA only).
_BNB_OPTIM = re.compile(r"(8bit|paged)")


# ---------------------------------------------------------------- tokenisation

def tokenize_examples(ai_texts: list[str], human_texts: list[str], tokenizer, train_on_inputs: bool = False) -> list[dict]:
    """Formatted examples as ``input_ids``, ``attention_mask`` and ``labels``, tokenised in batches.

    With ``train_on_inputs = False`` the prompt tokens (instruction + AI text) get label -100, so the
    loss is on the human response and the EOS only: the model learns to write, not to copy.
    """
    prompts = [format_prompt(ai) for ai in ai_texts]
    texts = [format_example(ai, human, tokenizer.eos_token) for ai, human in zip(ai_texts, human_texts)]
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(texts, return_offsets_mapping=True)
        # A token belongs to the response when it ends after the prompt's last character; added
        # special tokens such as a BOS have the empty span (0, 0) and stay in the prompt.
        in_response = [[end > len(p) for _, end in offsets] for p, offsets in zip(prompts, enc["offset_mapping"])]
    else:
        enc = tokenizer(texts)
        n_prompt = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
        in_response = [[i >= n for i in range(len(ids))] for n, ids in zip(n_prompt, enc["input_ids"])]
    out = []
    for ids, resp in zip(enc["input_ids"], in_response):
        ids = list(ids)
        labels = list(ids) if train_on_inputs else [t if r else IGNORE_INDEX for t, r in zip(ids, resp)]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def tokenize_example(ai_text: str, human_text: str, tokenizer, train_on_inputs: bool = False) -> dict:
    """One example as ``tokenize_examples`` makes it."""
    return tokenize_examples([ai_text], [human_text], tokenizer, train_on_inputs)[0]


@dataclass
class TokenizeReport:
    """What ``tokenize_pairs`` did to one split; printed by the notebook, saved in train_metrics.json."""

    split: str
    examples: int
    max_seq_length: int
    overlong: str
    over_max: int = 0  # examples longer than max_seq_length before any cut
    truncated: int = 0
    dropped: int = 0
    kept: int = 0
    lengths: list = field(default_factory=list, repr=False)  # full token length of every example

    @property
    def share_over(self) -> float:
        return self.over_max / self.examples if self.examples else 0.0

    def summary(self) -> str:
        if self.over_max == 0:
            cut = "none is longer"
        elif self.overlong == "drop":
            cut = f"{self.over_max} ({self.share_over:.1%}) are longer and were dropped"
        else:
            cut = f"{self.over_max} ({self.share_over:.1%}) are longer: {self.truncated} truncated"
            if self.dropped:
                cut += f", {self.dropped} dropped (the prompt alone fills max_seq_length)"
        return f"{self.split}: {self.examples} examples, max_seq_length {self.max_seq_length}: {cut}; {self.kept} kept"

    def length_summary(self) -> str:
        """Token-length percentiles of the full examples (prompt + response + EOS)."""
        if not self.lengths:
            return f"{self.split}: no examples"
        import numpy as np

        p50, p90, p99 = np.percentile(self.lengths, [50, 90, 99])
        return f"{self.split} example lengths in tokens: median {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {max(self.lengths)}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("lengths")
        d["share_over"] = round(self.share_over, 4)
        return d


def tokenize_pairs(
    pairs: pd.DataFrame,
    tokenizer,
    max_seq_length: int,
    overlong: str = "drop",
    train_on_inputs: bool = False,
    split: str = "train",
):
    """Tokenise a split of pairs (columns ``ai``, ``human``) into a ``datasets.Dataset``.

    Examples longer than ``max_seq_length`` are dropped (``overlong = "drop"``) or cut at the end
    (``"truncate"``: the cut example loses its EOS, and one whose prompt alone fills the window has
    nothing to learn from and is dropped). Returns ``(dataset, TokenizeReport)``.
    """
    from datasets import Dataset

    if overlong not in OVERLONG_MODES:
        raise UserError(f"overlong must be one of {', '.join(OVERLONG_MODES)}, got {overlong!r}")
    if max_seq_length < 16:
        raise UserError(f"max_seq_length {max_seq_length} is too small to hold the prompt; use 512 or more")
    report = TokenizeReport(split, len(pairs), max_seq_length, overlong)
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    ai, human = pairs["ai"].tolist(), pairs["human"].tolist()
    examples = [ex for i in range(0, len(ai), 1000) for ex in tokenize_examples(ai[i : i + 1000], human[i : i + 1000], tokenizer, train_on_inputs)]
    for ex in examples:
        report.lengths.append(len(ex["input_ids"]))
        if len(ex["input_ids"]) > max_seq_length:
            report.over_max += 1
            if overlong == "drop":
                report.dropped += 1
                continue
            ex = {k: v[:max_seq_length] for k, v in ex.items()}
            if all(label == IGNORE_INDEX for label in ex["labels"]):
                report.dropped += 1
                continue
            report.truncated += 1
        for k in rows:
            rows[k].append(ex[k])
    report.kept = len(rows["input_ids"])
    if report.examples and not report.kept:
        raise UserError(
            f"{split}: all {report.examples} examples are longer than max_seq_length = {max_seq_length} tokens "
            f"(shortest {min(report.lengths)}); raise max_seq_length or set overlong: truncate"
        )
    return Dataset.from_dict(rows), report


def label_counts(example: dict) -> tuple[int, int]:
    """``(masked, trained)`` token counts of one tokenised example."""
    masked = sum(1 for label in example["labels"] if label == IGNORE_INDEX)
    return masked, len(example["labels"]) - masked


def labels_html(example: dict, tokenizer) -> str:
    """The example's decoded text with the masked (no-loss) part greyed and struck through.

    Decoding runs of tokens, not single tokens, keeps multi-byte characters intact.
    """
    parts, run, run_masked = [], [], None
    for token, label in zip(example["input_ids"], example["labels"]):
        masked = label == IGNORE_INDEX
        if run and masked != run_masked:
            parts.append((run_masked, tokenizer.decode(run)))
            run = []
        run.append(token)
        run_masked = masked
    if run:
        parts.append((run_masked, tokenizer.decode(run)))
    spans = [
        f'<span style="color:#999;text-decoration:line-through">{escape(text)}</span>' if masked
        else f'<span style="color:#060;font-weight:600">{escape(text)}</span>'
        for masked, text in parts
    ]
    legend = ('<p><span style="color:#999;text-decoration:line-through">grey: masked (label -100, no loss)</span> · '
              '<span style="color:#060;font-weight:600">green: trained on</span></p>')
    return legend + '<pre style="white-space:pre-wrap">' + "".join(spans) + "</pre>"


def eda_overlong_warning(eda_summary_path: str | Path, max_seq_length: int) -> str:
    """The EDA notebook's warning when ``max_seq_length`` cuts more than 10% of its examples, else "".

    The EDA counted with the tokenizer it was given; a missing or unreadable summary gives "" (this
    notebook counts with its own tokenizer anyway).
    """
    from ai2human.eda import analysis as eda

    path = Path(eda_summary_path)
    if not path.is_file():
        return ""
    try:
        return eda.truncation_warning(eda.read_summary(path), max_seq_length)
    except (OSError, ValueError, KeyError, TypeError):
        return ""


# ---------------------------------------------------------------- options that depend on the hardware

def resolve_optim(optim: str, choice) -> tuple[str, str]:
    """The optimizer to use and a note: bitsandbytes optimizers (8-bit, paged) need CUDA and bitsandbytes."""
    import importlib.util

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


# ---------------------------------------------------------------- SFT config and trainer

# Orders a Trainer can draw training examples in (TrainingArguments.train_sampling_strategy).
TRAIN_SAMPLING = ("random", "group_by_length", "batch_rebalance")


def build_sft_config(
    *,
    run_dir: str | Path,
    choice,
    max_seq_length: int,
    learning_rate: float,
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int,
    warmup_steps: int,
    num_train_epochs: float,
    max_steps: int,
    optim: str,
    lr_scheduler_type: str,
    weight_decay: float,
    max_grad_norm: float,
    logging_steps: int,
    eval_steps: float,
    save_steps: float,
    save_total_limit: int,
    early_stopping_patience: int,
    seed: int,
    gradient_checkpointing: str | bool,
    packing: bool,
    padding_free: bool,
    report_to: str | list,
    has_eval: bool,
    per_device_eval_batch_size: int = 0,
    train_sampling: str = "random",
):
    """TRL's ``SFTConfig`` from the notebook's parameters, with our conventions applied.

    ``max_steps = 0`` trains for ``num_train_epochs``; ``eval_steps`` / ``save_steps`` below 1 are
    a fraction of the run (0.2 = every 20%), 0 turns evaluation / checkpoints off. Checkpoints go
    to ``run_dir/checkpoints``. ``early_stopping_patience > 0`` stops after that many evaluations
    without a better eval loss and keeps the best checkpoint's adapter.
    """
    from trl import SFTConfig

    if max_steps < 0:
        raise UserError(f"max_steps must be >= 0 (0 = train for num_train_epochs), got {max_steps}")
    if max_steps == 0 and num_train_epochs <= 0:
        raise UserError("max_steps is 0, so num_train_epochs decides the length; it must be > 0")
    evaluate = has_eval and eval_steps > 0
    if early_stopping_patience > 0:
        if not evaluate:
            raise UserError("early_stopping_patience needs evaluation: set val_size > 0 and eval_steps > 0, or early_stopping_patience: 0")
        if save_steps != eval_steps:
            raise UserError(
                f"early_stopping_patience keeps the best checkpoint, so checkpoints must be saved when evaluating: "
                f"set save_steps equal to eval_steps ({eval_steps}), now {save_steps}"
            )
    if train_sampling not in TRAIN_SAMPLING:
        raise UserError(f"train_sampling must be one of {', '.join(TRAIN_SAMPLING)}, got {train_sampling!r}")
    gc = parse_gradient_checkpointing(gradient_checkpointing)
    run_dir = Path(run_dir)
    # Our tokenisation already enforces max_seq_length. TRL refuses padding-free without packing
    # while max_length is set (it cannot cut a flattened batch), so hand it None then; Unsloth
    # expects max_length and arranges padding-free itself.
    max_length = None if (padding_free and not packing and choice.backend == "hf") else max_seq_length
    return SFTConfig(
        output_dir=str(run_dir / CHECKPOINTS),
        run_name=run_dir.name,
        report_to=report_to,
        seed=seed,
        max_steps=max_steps if max_steps > 0 else -1,
        num_train_epochs=num_train_epochs,
        per_device_train_batch_size=per_device_train_batch_size,
        per_device_eval_batch_size=per_device_eval_batch_size or per_device_train_batch_size,
        # group_by_length draws steps of similar lengths, so short micro-batches are not padded to a
        # long neighbour; docs/benchmarks.md has what it gave with each micro-batch size.
        train_sampling_strategy=train_sampling,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=learning_rate,
        lr_scheduler_type=lr_scheduler_type,
        warmup_steps=warmup_steps,
        optim=optim,
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm,
        logging_steps=logging_steps,
        logging_first_step=True,  # the step-1 loss anchors the "did the loss fall" diagnostic
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps if evaluate else None,
        save_strategy="steps" if save_steps > 0 else "no",
        save_steps=save_steps if save_steps > 0 else 500,
        save_total_limit=save_total_limit if save_total_limit > 0 else None,
        load_best_model_at_end=early_stopping_patience > 0,
        metric_for_best_model="eval_loss" if early_stopping_patience > 0 else None,
        greater_is_better=False if early_stopping_patience > 0 else None,
        bf16=choice.dtype == "bfloat16",
        fp16=choice.dtype == "float16",
        # TRL turns checkpointing on by default; follow the parameter instead. Unsloth reads its
        # own setting from the model (add_lora) and only needs to know it is on.
        gradient_checkpointing=bool(gc),
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc and choice.backend == "hf" else None,
        max_length=max_length,
        packing=packing,
        padding_free=padding_free,
        include_num_input_tokens_seen="non_padding",  # gives train_tokens_per_second
        dataloader_num_workers=0,
        # LoRA uses every trainable weight in each step, so DDP (distributed.py) need not search the
        # graph for unused ones; the search it does by default for a PEFT model costs time each step.
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=choice.device == "cuda",
        push_to_hub=False,  # the notebook pushes the adapter alone, at the end
    )


def log_callback(path: str | Path):
    """A ``TrainerCallback`` appending every record the trainer logs to ``train_log.jsonl``.

    Each record holds the step, the epoch and the logged keys. The file feeds the plots and the
    diagnostics, so it must survive a Kaggle session that is cut off: each record is flushed as it
    is written, and a resumed run first drops the records past the checkpoint it resumes from, so
    no step appears twice.
    """
    from transformers import TrainerCallback  # here, not at import: Unsloth must patch it first

    class JsonlLogCallback(TrainerCallback):
        def __init__(self, path: Path):
            self.path = path

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # one writer when several processes train (distributed.py)
                return
            step = state.global_step  # > 0 when resumed from a checkpoint
            keep = [r for r in read_log_records(self.path) if r.get("step", 0) <= step] if step else []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in keep)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            record = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3)}
            record.update({k: _jsonable(v) for k, v in (logs or {}).items()})
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    return JsonlLogCallback(Path(path))


def _jsonable(value):
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def read_log_records(path: str | Path) -> list[dict]:
    """The records of a ``train_log.jsonl``; a half-written last line (a killed session) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def build_trainer(
    *,
    model,
    tokenizer,
    args,
    train_dataset,
    eval_dataset=None,
    choice,
    log_path: str | Path,
    early_stopping_patience: int = 0,
):
    """TRL's ``SFTTrainer`` (Unsloth's patched one when Unsloth was imported first) with our callbacks."""
    import datasets
    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer

    callbacks = [log_callback(log_path)]
    if early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    # TRL's preparation maps (truncate, drop fully masked rows) are no-ops on our tokenised data;
    # their progress bars would only clutter the report.
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset if args.eval_strategy != "no" else None,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    finally:
        if bars:
            datasets.enable_progress_bars()
    if choice.backend == "hf" and choice.load_in_4bit and choice.dtype != "bfloat16":
        # TRL casts QLoRA adapters to bf16 (as the QLoRA paper does); a T4 has no bf16 and fp16
        # mixed precision needs fp32 master weights, so keep the few trainable weights in fp32.
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    return trainer


# ---------------------------------------------------------------- checkpoints

def _step(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def checkpoint_step(path: str | Path | None) -> int:
    """The global step of a ``checkpoint-N`` folder; 0 for None (a fresh start)."""
    return max(_step(Path(path)), 0) if path else 0


def is_complete_checkpoint(path: str | Path) -> bool:
    """The trainer writes ``trainer_state.json`` last, so a folder without a readable one was cut off."""
    state = Path(path) / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any((Path(path) / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors"))


def find_checkpoint(run_dir: str | Path, resume: str = "auto") -> tuple[str | None, str]:
    """The checkpoint to resume from and a sentence saying why.

    ``resume``: ``"auto"`` = the newest complete checkpoint in ``run_dir/checkpoints`` (none: start
    fresh); ``"never"`` = start fresh, deleting old checkpoints so a later ``auto`` cannot pick
    them up; anything else = a checkpoint folder (absolute, or relative to ``run_dir``).
    """
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINTS
    found = sorted((p for p in folder.glob("checkpoint-*") if _step(p) >= 0), key=_step) if folder.is_dir() else []
    if resume == "never":
        if found:
            shutil.rmtree(folder)
            return None, f"resume = never: starting from scratch (deleted {len(found)} old checkpoint(s) in {folder})"
        return None, "resume = never: starting from scratch"
    if resume == "auto":
        complete = [p for p in found if is_complete_checkpoint(p)]
        skipped = [p.name for p in found if p not in complete]
        note = f" (skipped incomplete {', '.join(skipped)})" if skipped else ""
        if not complete:
            return None, f"no checkpoint in {folder}: starting from scratch{note}"
        newest = complete[-1]
        return str(newest), f"resuming from {newest.name} (step {_step(newest)}){note}"
    path = Path(resume)
    path = path if path.is_absolute() else run_dir / path
    if not is_complete_checkpoint(path):
        raise UserError(f"resume = {resume!r}: {path} is not a complete checkpoint; use 'auto', 'never' or a checkpoint-N folder")
    return str(path), f"resuming from {path}"


# ---------------------------------------------------------------- results

def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (4-bit weights count as stored elements)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def gpu_memory_gib() -> tuple[float, float]:
    """``(reserved now, peak reserved)`` on GPU 0 in GiB; zeros without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return 0.0, 0.0
    return round(torch.cuda.memory_reserved() / 2**30, 2), round(torch.cuda.max_memory_reserved() / 2**30, 2)


def train_metrics(records: list[dict], train_output=None, **extra) -> dict:
    """The run's headline numbers for ``train_metrics.json`` from the log and the trainer's output.

    Losses cover the whole log; runtime and speed are those of the session that finished
    training (after a resume, the part trained in that session; transformers times each session).
    """
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    summary_at = max((i for i, r in enumerate(records) if "train_loss" in r), default=None)
    final = records[summary_at] if summary_at is not None else {}
    speed = next((r for r in reversed(records[: (summary_at or len(records)) + 1]) if "train_tokens_per_second" in r), {})
    metrics = {
        "first_eval_loss": evals[0][1] if evals else None,
        "final_eval_loss": evals[-1][1] if evals else None,
        "best_eval_loss": min(e[1] for e in evals) if evals else None,
        "best_eval_step": min(evals, key=lambda e: e[1])[0] if evals else None,
        "evaluations": len(evals),
        "first_train_loss": losses[0][1] if losses else None,
        "last_train_loss": losses[-1][1] if losses else None,
        "train_loss": final.get("train_loss"),  # mean over the finishing session's steps
        "global_step": final.get("step", losses[-1][0] if losses else 0),
        "epochs": final.get("epoch"),
        "train_runtime_s": final.get("train_runtime"),
        "train_samples_per_second": final.get("train_samples_per_second"),
        "train_tokens_per_second": speed.get("train_tokens_per_second"),
        "num_input_tokens_seen": final.get("num_input_tokens_seen"),
    }
    if train_output is not None:
        metrics["global_step"] = train_output.global_step
    metrics.update(extra)
    return metrics


def _finished(checkpoint: str | Path, args) -> bool:
    """Whether ``checkpoint`` already is the end of the run ``args`` describes."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    step = state.get("global_step", 0)
    if args.max_steps > 0:
        return step >= args.max_steps
    return step >= state.get("max_steps", math.inf) and state.get("num_train_epochs") == args.num_train_epochs


def train(trainer, resume_from: str | None = None):
    """``trainer.train(resume_from_checkpoint=resume_from)``, except when that checkpoint already
    ends the run (a notebook re-run after training finished): then its adapter is loaded instead,
    since transformers would train one step past the end."""
    if resume_from and _finished(resume_from, trainer.args):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        from transformers.trainer_utils import TrainOutput

        set_peft_model_state_dict(trainer.model, load_file(str(Path(resume_from) / "adapter_model.safetensors")))
        return TrainOutput(checkpoint_step(resume_from), float("nan"), {"already_finished": True})
    return trainer.train(resume_from_checkpoint=resume_from)


def save_adapter(model, tokenizer, adapter_dir: str | Path) -> list[str]:
    """Save the LoRA adapter and tokenizer only (~160 MB for a 7B model at r=16; merged in 16-bit: ~15 GB)."""
    adapter_dir = Path(adapter_dir)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    return sorted(p.name for p in adapter_dir.iterdir())


def push_adapter(model, tokenizer, hub_model_id: str, token: str) -> str:
    """Push the adapter to the Hub when asked and a token is available; returns what happened."""
    if not hub_model_id:
        return "hub_model_id is empty: adapter not pushed"
    if not token:
        return f"no Hugging Face token (HF_TOKEN environment variable or Kaggle secret): {hub_model_id} not pushed"
    model.push_to_hub(hub_model_id, token=token, private=True)
    tokenizer.push_to_hub(hub_model_id, token=token, private=True)
    return f"adapter pushed to https://huggingface.co/{hub_model_id} (private)"


# ---------------------------------------------------------------- before/after preview

def prepare_for_generation(model, choice) -> None:
    """Switch a trained model to generation (Unsloth's fast path; eval mode and the KV cache)."""
    if choice.backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    config = getattr(model, "config", None)
    if config is not None:
        config.use_cache = True


def before_after(model, tokenizer, pairs: pd.DataFrame, max_new_tokens: int = 256) -> pd.DataFrame:
    """Base vs fine-tuned rewrites of ``pairs`` next to the human reference.

    The base model's answers come from the same weights with the LoRA switched off
    (``model.disable_adapter()``), so nothing is loaded twice.
    """
    from ai2human.evaluate.generation import generate

    ai = pairs["ai"].tolist()
    prompts = [format_prompt(t) for t in ai]
    with model.disable_adapter():
        base = generate(model, tokenizer, prompts, max_new_tokens).texts  # greedy, as the evaluation's temperature 0
    tuned = generate(model, tokenizer, prompts, max_new_tokens).texts
    return pd.DataFrame({"ai": ai, "base": base, "fine_tuned": tuned, "human": pairs["human"].tolist()})


def format_before_after(table: pd.DataFrame, width: int = 600) -> str:
    """The before/after table as readable text blocks, each text cut to ``width`` characters."""

    def cut(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    blocks = []
    for i, row in enumerate(table.itertuples(index=False), 1):
        blocks.append(
            f"=== example {i} ===\n"
            f"AI input     : {cut(row.ai)}\n"
            f"base model   : {cut(row.base) or '(empty)'}\n"
            f"fine-tuned   : {cut(row.fine_tuned) or '(empty)'}\n"
            f"human (ref.) : {cut(row.human)}"
        )
    return "\n\n".join(blocks)
