"""The benchmark's worker: one backend in one process, its cases through the notebook's recipe.

``python -m ai2human.bench.worker SPEC.json`` (started by ``ai2human.bench``, never by hand) loads
the model once with ``recipe.load_model_with_lora`` and then trains each case with
``recipe.run_training``, the call ``02_finetune.ipynb`` makes, with the params file's settings
changed only as ``cases.case_settings`` says. It appends one JSON line per event to the spec's
events file, so the parent keeps every finished case even when a later one hangs or crashes.
What is measured, and how, is ``bench.meter``'s.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from ai2human import rundir
from ai2human.bench import data as bench_data
from ai2human.bench.cases import Case, case_settings, parse_case
from ai2human.bench.meter import Meter, loss_summary, summarize
from ai2human.train.trainer import read_log_records


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
        choice = choose_backend(spec["backend"], hw, params["load_in_4bit"])  # imports Unsloth first
        from ai2human.train import recipe
        from ai2human.train.results import count_parameters
        from ai2human.train.settings import TrainSettings

        self.recipe, self.choice = recipe, choice
        # The params file's settings (v5's), on the random model; each case changes what cases.case_settings says.
        self.settings = TrainSettings.from_params(params, run_dir=str(self.work), choice=choice,
                                                  model_name=spec["model_dir"], tokenizer_name="")
        self.reset_memory()
        timings: dict = {}
        self.model, self.tokenizer = recipe.load_model_with_lora(self.settings, timings)
        trainable, total_params = count_parameters(self.model)
        # Each case starts from the same LoRA initialisation (kept in host memory: not in the GPU peaks).
        self.initial = {n: p.detach().to("cpu", copy=True) for n, p in self.model.named_parameters() if p.requires_grad}
        self.events.write(
            "loaded", load_s=round(timings["load_s"], 1), lora_s=round(timings["lora_s"], 1), trainable_params=trainable,
            total_params=total_params, backend=choice.backend, dtype=choice.dtype, load_in_4bit=choice.load_in_4bit,
            choice=choice.summary(), hardware=hw.describe(), attention=attention_info(self.model, choice),
            torch_cuda=torch.version.cuda, **{f"load_{k}": v for k, v in self.memory().items()},
        )

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
        """One case through ``recipe.run_training``, the notebook's call, with the meter attached."""
        torch, spec = self.torch, self.spec
        from datasets import Dataset

        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name in self.initial:
                    param.copy_(self.initial[name])
        dataset = Dataset.from_dict(self.rows(case.regime))
        run_dir = self.work / case.name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        settings = case_settings(self.settings, case, spec["steps"], run_dir)
        self.reset_memory()
        meter = Meter(torch, self.events, case.name)
        try:
            result = self.recipe.run_training(settings, dataset, None, model=self.model, tokenizer=self.tokenizer,
                                              trainer_hooks=(meter.attach,), echo=lambda line: None)
        finally:
            meter.detach()
        memory = self.memory()
        if meter.used:
            memory["device_used_max_gib"] = _gib(max(meter.used))
        totals = meter.step_totals(case.grad_accum)
        metrics = result.metrics
        checkpointing = settings.gradient_checkpointing not in (False, "false")
        return {
            "status": "ok",
            "trainer_build_s": round(metrics["trainer_build_s"], 1),
            "train_s": round(metrics["train_call_s"], 1),
            **summarize(totals, meter.start, meter.ends, spec["skip_steps"], spec["flops"], bool(checkpointing),
                        spec["peaks"], self.choice.dtype),
            **loss_summary(read_log_records(run_dir / rundir.TRAIN_LOG), totals),
            **memory,
            "optim": metrics["optim"],
            "counted_by": meter.counted_by,
            "notes": [n for n in result.notes if not n.startswith("resume")],
        }

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
