"""What a training run leaves behind: parameter counts, ``train_metrics.json``, the adapter and its card."""

from __future__ import annotations

import json
from pathlib import Path

from ai2human.rundir import ADAPTER, CHECKPOINTS, TRAIN_METRICS


def real_numel(param) -> int:
    """The number of weights a parameter stands for.

    bitsandbytes stores a 4-bit weight packed two to a byte in a flat uint8 ``Params4bit``, so its
    ``numel()`` is half the weight count; its ``quant_state`` keeps the original shape.
    """
    quant_state = getattr(param, "quant_state", None)
    shape = getattr(quant_state, "shape", None)
    if shape is not None:
        count = 1
        for dim in shape:
            count *= int(dim)
        return count
    if type(param).__name__ == "Params4bit" or (quant_state is not None and str(getattr(param, "dtype", "")) == "torch.uint8"):
        return param.numel() * 2
    return param.numel()


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, 4-bit weights counted as the weights they stand for."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(real_numel(p) for p in model.parameters())
    return trainable, total


def gpu_memory_gib() -> tuple[float, float]:
    """``(reserved now, peak reserved)`` on this process's GPU in GiB; zeros without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return 0.0, 0.0
    return round(torch.cuda.memory_reserved() / 2**30, 2), round(torch.cuda.max_memory_reserved() / 2**30, 2)


def train_metrics(records: list[dict], train_output=None, **extra) -> dict:
    """The run's headline numbers for ``train_metrics.json`` from the log and the trainer's output.

    Losses cover the whole log; runtime figures are those of the session that finished training
    (after a resume, the part trained in that session; transformers times each session). The
    trainer's own tokens/s, which divides by evaluation passes and the first step too, is kept as
    ``tokens_per_second_whole_call``; ``extra`` (the phase clock's split) gives the training-only
    ``train_tokens_per_second``.
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
        "tokens_per_second_whole_call": speed.get("train_tokens_per_second"),
        "num_input_tokens_seen": final.get("num_input_tokens_seen"),
    }
    if train_output is not None:
        metrics["global_step"] = train_output.global_step
    metrics.update(extra)
    return metrics


def timing_lines(metrics: dict) -> list[str]:
    """Where the training cell's time went, one line each, for the notebook."""
    lines = []
    rate = metrics.get("train_tokens_per_second")
    if rate is not None:
        lines.append(f"training speed: {rate:,.0f} tokens/s over the training steps (first step and evaluation left out)")
    if metrics.get("train_steps_this_session"):
        lines.append(f"training steps: {metrics['train_steps_s']:.1f} s for {metrics['train_steps_this_session'] - 1} steps "
                     f"after the first; first step (compilation, warm-up): {metrics['first_step_s']:.1f} s")
    if metrics.get("evaluations_this_session"):
        lines.append(f"evaluation: {metrics['evaluation_s']:.1f} s in {metrics['evaluations_this_session']} passes "
                     f"(batch {metrics.get('per_device_eval_batch_size')})")
    if metrics.get("other_s") is not None:
        lines.append(f"checkpoints, logging and set-up inside train(): {metrics['other_s']:.1f} s")
    if metrics.get("preview_s") is not None:
        lines.append(f"before/after preview: {metrics['preview_s']:.1f} s")
    return lines


def add_metrics(run_dir: str | Path, **fields) -> dict:
    """Add ``fields`` to the run's ``train_metrics.json`` (what the notebook learns after training)."""
    from ai2human.data.pairs import save_json

    path = Path(run_dir) / TRAIN_METRICS
    metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    metrics.update(fields)
    save_json(metrics, path)
    return metrics


def save_adapter(model, tokenizer, adapter_dir: str | Path) -> list[str]:
    """Save the LoRA adapter and tokenizer only (~160 MB for a 7B model at r=16; merged in 16-bit: ~15 GB)."""
    adapter_dir = Path(adapter_dir)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    return sorted(p.name for p in adapter_dir.iterdir())


def model_card(settings, metrics: dict) -> str:
    """A model card for the adapter: base model, data, settings and results.

    TRL's generated card (``checkpoints/README.md``) names the base model ``[None](...)`` and shows
    a chat pipeline this adapter was never trained for.
    """
    def show(value):
        return "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))

    topology = settings.topology()
    rows = [
        ("base model", settings.model_name),
        ("backend", f"{settings.choice.backend}, {settings.choice.dtype}, 4-bit {settings.choice.load_in_4bit}"),
        ("LoRA", f"r {settings.lora_r}, alpha {settings.lora_alpha}, dropout {settings.lora_dropout}, "
                 f"on {settings.lora_target_modules}"),
        ("max_seq_length", settings.max_seq_length),
        ("learning rate", f"{settings.learning_rate:g}, {settings.lr_scheduler_type}, warm-up {settings.warmup_steps} steps"),
        ("global batch", f"{topology.global_batch} ({topology.processes} process(es) x {topology.per_device_train_batch_size} "
                         f"x accumulation {topology.gradient_accumulation_steps})"),
        ("optimizer", f"{metrics.get('optim', settings.optim)}, weight decay {settings.weight_decay:g}, "
                      f"gradient clipping {settings.max_grad_norm:g}"),
        ("length", f"max_steps {settings.max_steps}" if settings.max_steps else f"{settings.num_train_epochs:g} epoch(s)"),
        ("seed", settings.seed),
    ]
    tokenization = metrics.get("tokenization") or {}
    data = "; ".join(f"{split}: {t.get('kept')} of {t.get('examples')} examples" for split, t in tokenization.items())
    results = [(key, show(metrics.get(key))) for key in ("global_step", "first_eval_loss", "best_eval_loss", "final_eval_loss",
                                                          "train_loss", "train_tokens_per_second")]
    return "\n".join([
        f"# ai2human rewrite adapter ({Path(settings.run_dir).name})",
        "",
        f"A LoRA adapter for `{settings.model_name}` that rewrites an AI-generated text the way a person would write it: "
        "the Alpaca prompt holds the AI text as input, the response is the human text (loss on the response only).",
        "It is an adapter, not a merged model: load the base model, then this folder with `peft.PeftModel.from_pretrained`",
        "(`ai2human.models.loading.load_for_inference` does both).",
        "",
        "## Data",
        f"Pairs of human / AI texts, split by the run's seed; {data or 'see train_metrics.json'}.",
        "",
        "## Settings",
        "| setting | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
        "## Results",
        "| metric | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in results],
        "",
        "Written by `ai2human.train.results.model_card`; every number is in the run's `train_metrics.json`.",
        "",
    ])


def write_model_cards(settings, metrics: dict) -> list[Path]:
    """Our card as ``adapter/README.md`` and ``checkpoints/README.md`` (replacing TRL's and PEFT's)."""
    text = model_card(settings, metrics)
    written = []
    for folder in (Path(settings.run_dir) / ADAPTER, Path(settings.run_dir) / CHECKPOINTS):
        if folder.is_dir():
            (folder / "README.md").write_text(text, encoding="utf-8")
            written.append(folder / "README.md")
    return written


def push_adapter(model, tokenizer, hub_model_id: str, token: str) -> str:
    """Push the adapter to the Hub when asked and a token is available; returns what happened."""
    if not hub_model_id:
        return "hub_model_id is empty: adapter not pushed"
    if not token:
        return f"no Hugging Face token (HF_TOKEN environment variable or Kaggle secret): {hub_model_id} not pushed"
    model.push_to_hub(hub_model_id, token=token, private=True)
    tokenizer.push_to_hub(hub_model_id, token=token, private=True)
    return f"adapter pushed to https://huggingface.co/{hub_model_id} (private)"
