"""The benchmark's worker: one backend in one process, training cases through the notebook's functions.

``python -m ai2human.bench.worker SPEC.json`` (started by ``ai2human.bench``, never by hand) loads
the model once with ``models.load_model`` and ``models.add_lora`` and then, for each case, builds
the trainer with ``training.build_sft_config`` and ``training.build_trainer`` exactly as
``02_finetune.ipynb`` does, with the v5 settings read from the params file, and trains. It
appends one JSON line per event to the spec's events file, so the parent keeps every finished
case even when a later one hangs or crashes.

A case is ``REGIME-BATCHING[-bN]``: the regime says how long the examples are (``bench_data``),
the batching how micro-batches are made (``BATCHING``), ``-bN`` the micro-batch size, with the
gradient accumulation adjusted so an optimizer step keeps v5's 8 examples.

Measured per case, on the GPU's clock (synchronised at every optimizer step): the first step
(compilation included), then steady-state seconds per step over the remaining steps, tokens per
second (all tokens including padding, and non-padding tokens), model FLOP/s, and peak memory.
Every forward's batch is counted on the GPU without a host sync (a forward pre-hook).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ai2human import rundir
from ai2human.bench import data as bench_data
from ai2human.bench.model import training_flops

# batching -> (packing, padding_free, train_sampling_strategy)
BATCHING = {
    "pad": (False, False, "random"),  # v5: random micro-batches padded to their longest example
    "padfree": (False, True, "random"),  # each micro-batch concatenated, no padding
    "packing": (True, False, "random"),  # examples packed into max_seq_length rows (fewer steps)
    "grouped": (False, False, "group_by_length"),  # length-grouped sampling: steps of similar lengths
    "rebalance": (False, False, "batch_rebalance"),  # each step's random examples regrouped by length (same steps)
}
EFFECTIVE_BATCH = 8  # v5: batch 2 x gradient accumulation 4


@dataclass(frozen=True)
class Case:
    name: str
    regime: str
    batching: str
    batch_size: int
    grad_accum: int

    @property
    def packing(self) -> bool:
        return BATCHING[self.batching][0]

    @property
    def padding_free(self) -> bool:
        return BATCHING[self.batching][1]

    @property
    def sampling(self) -> str:
        return BATCHING[self.batching][2]


def parse_case(name: str, batch_size: int = 2, grad_accum: int = 4) -> Case:
    """``full-pad``, ``real-packing``, ``real-rebalance-b4``, ... -> Case (``full`` alone = ``full-pad``).

    ``-bN`` sets the micro-batch size and divides the gradient accumulation so a step keeps
    ``batch_size x grad_accum`` examples (v5's 8).
    """
    parts = name.strip().split("-")
    if parts == ["full"]:
        parts = ["full", "pad"]
    size = None
    if len(parts) == 3 and parts[2].startswith("b") and parts[2][1:].isdigit():
        size = int(parts[2][1:])
        parts = parts[:2]
    if len(parts) != 2 or parts[0] not in bench_data.REGIMES or parts[1] not in BATCHING:
        raise ValueError(
            f"case {name!r}: expected REGIME-BATCHING[-bN] with REGIME in {', '.join(bench_data.REGIMES)} "
            f"and BATCHING in {', '.join(BATCHING)} (e.g. real-packing, real-rebalance-b4)"
        )
    effective = batch_size * grad_accum
    if size is not None:
        if size < 1 or effective % size:
            raise ValueError(f"case {name!r}: micro-batch {size} must divide the {effective} examples of a step")
        batch_size, grad_accum = size, effective // size
    return Case(name.strip(), parts[0], parts[1], batch_size, grad_accum)


def sft_kwargs(params: dict, run_dir, choice, case: Case, steps: int) -> dict:
    """``build_sft_config``'s keywords: the notebook's call with the params file's values.

    What the benchmark changes, and why: a fixed number of steps (``full``) or one epoch
    (``real``/``epoch``), a log record every step (the loss per step), no evaluation or
    checkpoints (not training throughput), no tracking, and the case's batching.
    """
    return dict(
        run_dir=run_dir,
        choice=choice,
        max_seq_length=params["max_seq_length"],
        learning_rate=params["learning_rate"],
        per_device_train_batch_size=case.batch_size,
        gradient_accumulation_steps=case.grad_accum,
        warmup_steps=params["warmup_steps"],
        num_train_epochs=1.0,
        max_steps=steps if case.regime == "full" else 0,
        optim=params["optim"],  # replaced by resolve_optim's choice in run_case
        lr_scheduler_type=params["lr_scheduler_type"],
        weight_decay=params["weight_decay"],
        max_grad_norm=params["max_grad_norm"],
        logging_steps=1,
        eval_steps=0,
        save_steps=0,
        save_total_limit=params["save_total_limit"],
        early_stopping_patience=0,
        seed=params["seed"],
        gradient_checkpointing=params["gradient_checkpointing"],
        packing=case.packing,
        padding_free=case.padding_free,
        train_sampling=case.sampling,
        report_to="none",
        has_eval=False,
    )


# ---------------------------------------------------------------- measuring

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

    def __init__(self, torch, events: "Events | None" = None, case: str = "", progress_every: int = 10):
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


# ---------------------------------------------------------------- the worker

class Events:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def write(self, event: str, **data):
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "time": round(time.time(), 3), **data}, default=str) + "\n")
            f.flush()


def _gib(n: float) -> float:
    return round(n / 2**30, 2)


def attention_info(model, choice) -> dict:
    info = {"attn_implementation": str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")}
    if choice.backend == "unsloth":
        try:
            import unsloth.utils.attention_dispatch as ad

            info.update(
                flash_attn=bool(getattr(ad, "HAS_FLASH_ATTENTION", False)),
                xformers=bool(getattr(ad, "HAS_XFORMERS", False)),
                torch_varlen=getattr(ad, "_TORCH_VARLEN_ATTN", None) is not None,
            )
        except Exception as exc:  # informational only
            info["error"] = f"{type(exc).__name__}: {exc}"
    return info


class Worker:
    def __init__(self, spec: dict):
        import torch

        self.torch = torch
        self.spec = spec
        self.events = Events(spec["events"])
        self.cuda = torch.cuda.is_available()
        self.work = Path(spec["work_dir"])
        self.datasets: dict[str, dict] = {}

    def memory(self) -> dict:
        if not self.cuda:
            return {}
        t = self.torch.cuda
        free, total = t.mem_get_info()
        return {"peak_alloc_gib": _gib(t.max_memory_allocated()), "peak_reserved_gib": _gib(t.max_memory_reserved()),
                "device_used_gib": _gib(total - free)}

    def reset_memory(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def load(self):
        spec, torch = self.spec, self.torch
        cap = spec.get("memory_cap_gib") or 0
        if cap and self.cuda:
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / total))
        from ai2human.models.hardware import choose_backend, detect_hardware

        hw = detect_hardware()
        if spec["precision"] == "t4":
            hw.bf16 = False  # a T4 has no bf16: choose_backend then picks fp16, as it does on Kaggle
        params = spec["params"]
        self.choice = choose_backend(spec["backend"], hw, params["load_in_4bit"])  # imports Unsloth first
        from ai2human.train import sft as training
        from ai2human.models.loading import add_lora, load_model, parse_target_modules

        self.training = training
        self.reset_memory()
        start = time.perf_counter()
        model, tokenizer = load_model(
            model_name=spec["model_dir"],
            choice=self.choice,
            max_seq_length=params["max_seq_length"],
            tokenizer_name="",
        )
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        model = add_lora(
            model,
            choice=self.choice,
            r=params["lora_r"],
            lora_alpha=params["lora_alpha"],
            lora_dropout=params["lora_dropout"],
            target_modules=parse_target_modules(params["lora_target_modules"]),
            gradient_checkpointing=params["gradient_checkpointing"],
            seed=params["seed"],
        )
        lora_s = time.perf_counter() - start
        self.model, self.tokenizer = model, tokenizer
        trainable, total_params = training.count_parameters(model)
        # Each case starts from the same LoRA initialisation (kept in host memory: not in the GPU peaks).
        self.initial = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
        self.events.write(
            "loaded", load_s=round(load_s, 1), lora_s=round(lora_s, 1), trainable_params=trainable, total_params=total_params,
            backend=self.choice.backend, dtype=self.choice.dtype, load_in_4bit=self.choice.load_in_4bit,
            choice=self.choice.summary(), hardware=hw.describe(), attention=attention_info(model, self.choice),
            torch_cuda=torch.version.cuda, **{f"load_{k}": v for k, v in self.memory().items()},
        )
        return load_s, lora_s

    def rows(self, regime: str) -> dict:
        if regime not in self.datasets:
            spec = self.spec
            sample = bench_data.LengthSample(**spec["lengths"][regime])
            tok = self.tokenizer
            self.datasets[regime] = bench_data.synthetic_rows(
                sample.lengths, (1, len(tok)), tok.eos_token_id, spec["prompt_share"], seed=spec["seed"],
                exclude=(tok.pad_token_id,),
            )
        return self.datasets[regime]

    def run_case(self, case: Case) -> dict:
        torch, spec, training, choice = self.torch, self.spec, self.training, self.choice
        from datasets import Dataset

        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name in self.initial:
                    param.copy_(self.initial[name])
        dataset = Dataset.from_dict(self.rows(case.regime))
        run_dir = self.work / case.name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        params = spec["params"]
        optim_used, optim_note = training.resolve_optim(params["optim"], choice)
        notes = [n for n in [optim_note, *training.check_batching(choice, self.model, case.packing, case.padding_free)] if n]
        kwargs = sft_kwargs(params, run_dir, choice, case, spec["steps"])
        kwargs["optim"] = optim_used
        args = training.build_sft_config(**kwargs)
        self.reset_memory()
        start = time.perf_counter()
        trainer = training.build_trainer(
            model=self.model,
            tokenizer=self.tokenizer,
            args=args,
            train_dataset=dataset,
            eval_dataset=None,
            choice=choice,
            log_path=run_dir / rundir.TRAIN_LOG,
            early_stopping_patience=0,
        )
        build_s = time.perf_counter() - start
        meter = Meter(torch, self.events, case.name)
        meter.attach(trainer)
        start = time.perf_counter()
        try:
            trainer.train()
        finally:
            meter.detach()
        train_s = time.perf_counter() - start
        memory = self.memory()
        if meter.used:
            memory["device_used_max_gib"] = _gib(max(meter.used))
        totals = meter.step_totals(case.grad_accum)
        counts = spec["flops"]
        result = {
            "status": "ok",
            "trainer_build_s": round(build_s, 1),
            "train_s": round(train_s, 1),
            **summarize(totals, meter.start, meter.ends, spec["skip_steps"], counts,
                        bool(params["gradient_checkpointing"] not in (False, "false")), spec["peaks"], choice.dtype),
            **loss_summary(training.read_log_records(run_dir / rundir.TRAIN_LOG), totals),
            **memory,
            "optim": optim_used,
            "counted_by": meter.counted_by,
            "notes": notes,
        }
        # Drop accelerate's mixed-precision forward wrapper so the next case's trainer does not nest another.
        try:
            trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        except Exception:
            pass
        del trainer
        return result

    def isolation_check(self) -> dict:
        """Do packed examples stay apart? Each example's loss alone vs inside a packed row.

        With positions restarting per example (what the packing and padding-free collators send)
        the losses must match to rounding; the control sends one continuous sequence, letting later
        examples attend to earlier ones, which is what a leak would look like: the check is
        meaningful when the control's difference is well above the packed one.
        """
        torch, model = self.torch, self.model
        msl = self.spec["params"]["max_seq_length"]
        lengths = [max(bench_data.MIN_LENGTH, int(msl * f)) for f in (0.15, 0.25, 0.35)]
        tok = self.tokenizer
        rows = bench_data.synthetic_rows(lengths, (1, len(tok)), tok.eos_token_id, self.spec["prompt_share"], seed=7,
                                         exclude=(tok.pad_token_id,))
        device = next(model.parameters()).device
        ids = [torch.tensor(x, device=device) for x in rows["input_ids"]]
        # Only each example's last tokens carry a label: they see the most context, and a mean over
        # a few tokens moves visibly when that context changes (a mean over hundreds averages out).
        labels = [torch.cat([torch.full_like(x[:-8], -100), x[-8:]]) for x in ids]
        packed_ids = torch.cat(ids)[None]
        restart = torch.cat([torch.arange(len(x), device=device) for x in ids])[None]
        continuous = torch.arange(packed_ids.shape[1], device=device)[None]
        extra = {"use_cache": False}  # as TRL's compute_loss sends it: with a cache transformers ignores packing
        if self.choice.backend == "unsloth":
            extra["packed_seq_lengths"] = torch.tensor(lengths, dtype=torch.int32, device=device)
        out = {"lengths": lengths, "alone": [], "packed": [], "continuous": []}
        with torch.no_grad():
            for i in range(len(ids)):
                only_i = torch.cat([lab if j == i else torch.full_like(lab, -100) for j, lab in enumerate(labels)])[None]
                out["alone"].append(float(model(input_ids=ids[i][None], labels=labels[i][None], use_cache=False).loss))
                out["packed"].append(float(model(input_ids=packed_ids, position_ids=restart, labels=only_i, **extra).loss))
                out["continuous"].append(float(model(input_ids=packed_ids, position_ids=continuous, labels=only_i,
                                                     use_cache=False).loss))

        def rel(a, b):
            return max(abs(x - y) / abs(y) for x, y in zip(a, b))

        out["max_rel_diff_packed"] = round(rel(out["packed"], out["alone"]), 6)
        out["max_rel_diff_continuous"] = round(rel(out["continuous"][1:], out["alone"][1:]), 6)
        return out

    def run(self) -> int:
        spec = self.spec
        self.load()
        for name in spec["cases"]:
            case = parse_case(name, spec["params"]["per_device_train_batch_size"], spec["params"]["gradient_accumulation_steps"])
            self.events.write("case_start", case=name)
            base = {"case": name, "regime": case.regime, "batching": case.batching, "sampling": case.sampling,
                    "packing": case.packing, "padding_free": case.padding_free, "batch_size": case.batch_size,
                    "grad_accum": case.grad_accum}
            fatal = False
            try:
                result = self.run_case(case)
            except self.torch.cuda.OutOfMemoryError as exc:
                result = {"status": "oom", "error": str(exc).splitlines()[0][:300], **self.memory()}
                exc.__traceback__ = None
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                result = {"status": "error", "error": text[:2000], "traceback": traceback.format_exc()[-4000:]}
                fatal = any(s in text for s in ("CUDA error", "illegal memory access", "device-side assert"))
                exc.__traceback__ = None
            self.events.write("case_done", result={**base, **result})
            print(f"[bench] {name}: {result.get('status')} "
                  f"{result.get('s_per_step')} s/step, {result.get('nonpad_tokens_per_s')} non-padding tokens/s", flush=True)
            self.reset_memory()
            if fatal:
                return 3
        if spec.get("isolation_check"):
            try:
                self.events.write("isolation", result=self.isolation_check())
            except Exception as exc:
                self.events.write("isolation", result={"error": f"{type(exc).__name__}: {exc}"[:1000]})
        self.events.write("end")
        return 0


def main(argv: list[str] | None = None) -> int:
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    os.chdir(spec["work_dir"])  # Unsloth writes its compile cache into the working directory
    worker = Worker(spec)
    try:
        return worker.run()
    except BaseException as exc:
        worker.events.write("failed", error=f"{type(exc).__name__}: {exc}"[:2000], traceback=traceback.format_exc()[-4000:])
        raise


if __name__ == "__main__":
    raise SystemExit(main())
