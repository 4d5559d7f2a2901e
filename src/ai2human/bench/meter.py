"""Measuring a benchmark case: every forward's tokens, every optimizer step's time, the summary.

Measured per case, on the GPU's clock (synchronised at every optimizer step): the first step
(compilation included), then steady-state seconds per step over the remaining steps, tokens per
second (all tokens including padding, and non-padding tokens), model FLOP/s, and peak memory.
Every forward's batch is counted on the GPU without a host sync (a forward pre-hook).
"""

from __future__ import annotations

import time

from ai2human.bench.flops import training_flops


def micro_batch_stats(torch, input_ids, attention_mask=None, position_ids=None, packed_seq_lengths=None, labels=None) -> dict:
    """One forward's token counts as GPU tensors (no host sync): padded, non-padding, trained
    (label != -100), examples and causal attention pairs of the real examples."""
    padded = int(input_ids.numel())
    rows, width = (input_ids.shape[0], input_ids.shape[-1]) if input_ids.dim() > 1 else (1, input_ids.shape[0])
    if attention_mask is not None and attention_mask.dim() == 2:
        lens = attention_mask.long().sum(-1)
    elif packed_seq_lengths is not None:
        lens = packed_seq_lengths.long().flatten()
    elif position_ids is not None:
        pos = position_ids.long().flatten()
        # Each example restarts its positions at 0; sum over its tokens of (pos + 1) is L(L + 1)/2.
        return {"padded": padded, "real": torch.tensor(padded, device=pos.device), "examples": (pos == 0).sum(),
                "pairs": (pos + 1).sum(), "trained": (labels != -100).sum() if labels is not None else None}
    else:
        lens = torch.full((rows,), width, dtype=torch.long, device=input_ids.device)
    return {"padded": padded, "real": lens.sum(), "examples": (lens > 0).sum(), "pairs": (lens * (lens + 1) // 2).sum(),
            "trained": (labels != -100).sum() if labels is not None else None}


def reduce_micro_batches(micro: list[dict]) -> dict:
    """One optimizer step's micro-batch stats summed into Python ints."""
    totals = {"microbatches": len(micro), "padded": sum(m["padded"] for m in micro)}
    for key in ("real", "trained", "examples", "pairs"):
        values = [m[key] for m in micro if m[key] is not None]
        totals[key] = int(sum(int(v.item()) for v in values)) if values else 0
    totals["max_examples_per_microbatch"] = max((int(m["examples"].item()) for m in micro), default=0)
    return totals


class Meter:
    """Counts every forward's tokens (pre-hook) and times every optimizer step (callback).

    At each step's end (the GPU is synchronised there anyway) the step's counts become Python
    ints; every ``progress_every`` steps a progress event goes to the events file, so a case
    stopped by a timeout still leaves its rate so far.
    """

    def __init__(self, torch, events=None, case: str = "", progress_every: int = 10):
        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self.events, self.case, self.progress_every = events, case, progress_every
        self.current: list[dict] = []
        self.totals: list[dict] = []
        self.collated: list[dict] = []  # fallback when no forward was seen (a trainer calling forward directly)
        self.ends: list[float] = []
        self.used: list[int] = []
        self.start = 0.0
        self.handle = None
        self.counted_by = "forward"

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or not hasattr(ids, "numel"):
            return
        self.current.append(micro_batch_stats(
            self.torch, ids, kwargs.get("attention_mask"), kwargs.get("position_ids"),
            kwargs.get("packed_seq_lengths"), kwargs.get("labels"),
        ))

    def _sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def step_end(self, epoch: float | None = None):
        self._sync()
        self.ends.append(time.perf_counter())
        self.totals.append(reduce_micro_batches(self.current))
        self.current = []
        if self.cuda:
            free, total = self.torch.cuda.mem_get_info()
            self.used.append(total - free)
        n = len(self.ends)
        if self.events is not None and n % self.progress_every == 0:
            later = slice(1, n)  # the first step compiles
            seconds = self.ends[-1] - self.ends[0]
            self.events.write("progress", case=self.case, steps=n, epoch=epoch, elapsed_s=round(self.ends[-1] - self.start, 2),
                              first_step_s=round(self.ends[0] - self.start, 2),
                              s_per_step=round(seconds / (n - 1), 3) if n > 1 else None,
                              nonpad_tokens_per_s=round(sum(t["real"] for t in self.totals[later]) / seconds, 1) if seconds else None,
                              tokens_per_s=round(sum(t["padded"] for t in self.totals[later]) / seconds, 1) if seconds else None)

    def attach(self, trainer):
        from transformers import TrainerCallback

        meter = self

        class StepClock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                meter._sync()
                meter.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                meter.step_end(state.epoch)

        trainer.add_callback(StepClock())
        self.handle = trainer.model.register_forward_pre_hook(self._hook, with_kwargs=True)
        # Tap the collator the way Unsloth wraps it: the instance's torch_call, so the object (and
        # every attribute the trainer or Unsloth reads from it) stays the same.
        collator = trainer.data_collator
        torch = self.torch

        def record(batch):
            ids = batch.get("input_ids") if hasattr(batch, "get") else None
            if ids is not None:
                self.collated.append(micro_batch_stats(torch, ids, batch.get("attention_mask"), batch.get("position_ids"),
                                                       batch.get("packed_seq_lengths"), batch.get("labels")))
            return batch

        if hasattr(collator, "torch_call"):
            inner = collator.torch_call
            collator.torch_call = lambda features: record(inner(features))
        elif callable(collator):
            trainer.data_collator = lambda features: record(collator(features))

    def detach(self):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def step_totals(self, grad_accum: int) -> list[dict]:
        """Per optimizer step: micro-batches and summed counts, as Python ints.

        From the forwards seen; if none were (the hook missed them), from the collated batches,
        ``grad_accum`` to a step (the loader may have prepared one batch more than was trained on).
        """
        if not any(t["microbatches"] for t in self.totals) and self.collated:
            self.counted_by = "collator"
            return [reduce_micro_batches(self.collated[i * grad_accum:(i + 1) * grad_accum]) for i in range(len(self.totals))]
        return self.totals


def summarize(totals: list[dict], start: float, ends: list[float], skip_steps: int, counts: dict,
              checkpointing: bool, peaks: dict, dtype: str) -> dict:
    """Steady-state numbers from per-step totals and step end times (pure; unit-tested)."""
    if not ends:
        return {"steps": 0}
    durations = [ends[0] - start] + [b - a for a, b in zip(ends, ends[1:])]
    n = len(durations)
    skip = min(skip_steps, n - 1) if n > 1 else 0
    measured = list(range(skip, n))
    seconds = sum(durations[i] for i in measured)
    tok = {k: sum(totals[i][k] for i in measured) for k in ("padded", "real", "trained", "pairs")}
    model_flops = hardware_flops = 0.0
    for i in measured:
        m, h = training_flops(counts, totals[i]["real"], totals[i]["pairs"], checkpointing)
        model_flops += m
        hardware_flops += h
    model_tflops = model_flops / seconds / 1e12 if seconds else None
    hardware_tflops = hardware_flops / seconds / 1e12 if seconds else None
    measured_peak = (peaks.get("measured") or {}).get(dtype)
    datasheet = peaks.get("datasheet")
    ordered = sorted(durations[i] for i in measured)
    return {
        "steps": n,
        "measured_steps": len(measured),
        "first_step_s": round(durations[0], 2),
        "s_per_step": round(seconds / len(measured), 3) if measured else None,
        "s_per_step_median": round(ordered[len(ordered) // 2], 3) if ordered else None,
        "tokens_per_s": round(tok["padded"] / seconds, 1) if seconds else None,
        "nonpad_tokens_per_s": round(tok["real"] / seconds, 1) if seconds else None,
        "padding_share": round(1 - tok["real"] / tok["padded"], 4) if tok["padded"] else None,
        "model_tflops_per_s": round(model_tflops, 1) if model_tflops is not None else None,
        "hardware_tflops_per_s": round(hardware_tflops, 1) if hardware_tflops is not None else None,
        "mfu_measured_peak": round(model_tflops / measured_peak, 4) if model_tflops and measured_peak else None,
        "mfu_datasheet_peak": round(model_tflops / datasheet, 4) if model_tflops and datasheet else None,
        "hfu_measured_peak": round(hardware_tflops / measured_peak, 4) if hardware_tflops and measured_peak else None,
        "examples": sum(t["examples"] for t in totals),
        "padded_tokens": sum(t["padded"] for t in totals),
        "nonpad_tokens": sum(t["real"] for t in totals),
        "trained_tokens": sum(t["trained"] for t in totals),
        "microbatches_per_step": round(sum(t["microbatches"] for t in totals) / n, 2),
        "max_examples_per_microbatch": max(t["max_examples_per_microbatch"] for t in totals),
        "step_seconds": [round(d, 3) for d in durations],
    }


def loss_summary(records: list[dict], totals: list[dict]) -> dict:
    """Per-step losses from train_log.jsonl and their mean weighted by each step's trained tokens.

    Over one epoch every batching trains on the same examples, so this mean must agree across
    batchings when they compute the same loss on the same tokens.
    """
    by_step = {}
    for r in records:
        if "loss" in r and "step" in r:
            by_step[int(r["step"])] = float(r["loss"])
    losses = [by_step.get(i + 1) for i in range(len(totals))]
    pairs = [(loss, t["trained"]) for loss, t in zip(losses, totals) if loss is not None and t["trained"]]
    weight = sum(w for _, w in pairs)
    return {
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "loss_token_mean": round(sum(loss * w for loss, w in pairs) / weight, 5) if weight else None,
        "losses": [round(x, 5) if x is not None else None for x in losses],
    }
