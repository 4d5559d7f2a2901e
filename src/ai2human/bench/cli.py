"""The GPU training benchmark: the fine-tuning notebook's training path, measured side by side.

    python -m ai2human.bench train [--backend unsloth --backend hf] [--precision native|t4]
                                   [--cases full,real-pad,real-packing,...] [--steps 10] [--out-dir DIR]
    python -m ai2human.bench report [--add RESULTS.json ...]     # merge into bench/results/, write docs/benchmarks.md

``train`` builds (once, into ``/dev/shm``) a random-weight model with Qwen2.5-7B's exact shape
and measures its peak matmul rate (``bench.model``), then runs each backend in a process of its
own (``bench.worker``), one after the other on the same GPU: load, LoRA, and the cases through
``train.recipe.run_training`` with ``params/v5.yaml``'s settings.
``--precision t4`` trains in fp16 with the process capped at 15 GiB, a T4's budget. Every case
has a timeout and the whole command a deadline (``--deadline-s``), so a hang costs one case and
the results so far are always written: ``<out-dir>/<date>-<gpu>.json`` (merged with a file of
that name already there) and one log per backend. ``report`` turns every results file into
``docs/benchmarks.md``. On a CPU it runs the tiny shape through the transformers backend (the
benchmark's own test).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path

from ai2human.bench import data as bench_data
from ai2human.bench import model as bench_model
from ai2human.bench import report as bench_report
from ai2human.bench.flops import flop_counts
from ai2human.bench.cases import BATCHING, parse_case
from ai2human.bench.groups import Clock, run_build, run_group
from ai2human.errors import UserError

REPO = Path(__file__).resolve().parents[3]
PRECISIONS = ("native", "t4")
BACKENDS = ("unsloth", "hf")
T4_MEMORY_GIB = 15.0
# Ordered by what matters most, so a deadline cuts the least useful cases.
DEFAULT_CASES = {
    ("unsloth", "native"): ["full", "real-pad", "real-packing", "real-rebalance-b4", "real-padfree", "real-rebalance",
                            "real-grouped-b4"],
    ("hf", "native"): ["full", "real-pad", "real-rebalance-b4"],
    ("unsloth", "t4"): ["full"],
    ("hf", "t4"): ["full"],
}
CPU_CASES = ["full", "real-pad", "real-padfree", "real-rebalance-b4"]
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth", "unsloth_zoo",
            "xformers", "triton")


def gpu_info() -> dict:
    """Name, driver and memory of GPU 0 from nvidia-smi; {} without one (no torch import here)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    line = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) < 3:
        return {}
    return {"gpu": parts[0], "driver": parts[1], "gpu_memory_gib": round(float(parts[2]) / 1024, 1)}


def package_versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ai2human.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="measure training speed and memory (GPU; a tiny shape on a CPU)")
    t.add_argument("--backend", action="append", choices=BACKENDS, help="repeatable; default unsloth and hf on a GPU, hf on a CPU")
    t.add_argument("--precision", action="append", choices=PRECISIONS,
                   help="native = bf16 where supported; t4 = fp16 with the process capped at --memory-cap-gib. Repeatable")
    t.add_argument("--cases", default="", help="comma list of REGIME-BATCHING[-bN] (regimes: full, real, epoch; batchings: "
                   f"{', '.join(BATCHING)}); default per backend and precision")
    t.add_argument("--group", action="append", default=[], metavar="BACKEND/PRECISION=CASES",
                   help="run exactly these groups in this order, e.g. hf/native=full,real-pad (overrides --backend, "
                        "--precision and --cases); repeatable")
    t.add_argument("--steps", type=int, default=10, help="optimizer steps of the full-row cases")
    t.add_argument("--skip-steps", type=int, default=2, help="first steps left out of the steady state (compilation)")
    t.add_argument("--real-rows", type=int, default=160, help="examples in the realistic-length epoch (a multiple of 8: whole steps)")
    t.add_argument("--epoch-rows", type=int, default=3000, help="rows drawn for the epoch regime (over-long ones dropped)")
    t.add_argument("--lengths", default="", help="eda_summary.json whose example token lengths the realistic regimes draw from")
    t.add_argument("--median", type=float, default=0.0, help="log-normal median in tokens (0 = 1000 at max_seq_length 2048, scaled)")
    t.add_argument("--share-over", type=float, default=bench_data.REFERENCE_SHARE_OVER, help="log-normal share above max_seq_length")
    t.add_argument("--prompt-share", type=float, default=0.5, help="share of each example that is prompt (label -100)")
    t.add_argument("--shape", choices=sorted(bench_model.SHAPES), default="", help="model shape; default qwen2.5-7b on a GPU, tiny on a CPU")
    t.add_argument("--model-dir", default="", help="where the random-weight model is saved (default /dev/shm/ai2human-bench-SHAPE)")
    t.add_argument("--params", default=str(REPO / "params" / "v5.yaml"), help="params file with the training settings")
    t.add_argument("--max-seq-length", type=int, default=0, help="override the params file's max_seq_length (tests)")
    t.add_argument("--memory-cap-gib", type=float, default=T4_MEMORY_GIB, help="process memory cap of --precision t4")
    t.add_argument("--isolation-check", choices=("auto", "on", "off"), default="auto",
                   help="packed-vs-alone loss check after the cases (auto: when a packing/padfree case runs)")
    t.add_argument("--out-dir", default="", help="results folder (default $OUT when set, else bench/results)")
    t.add_argument("--deadline-s", type=float, default=0, help="stop everything after this many seconds, keeping results (0 = none)")
    t.add_argument("--case-timeout", type=float, default=240, help="seconds one case may take")
    t.add_argument("--epoch-timeout", type=float, default=900, help="seconds one epoch-regime case may take")
    t.add_argument("--load-timeout", type=float, default=300, help="seconds a backend may take to load the model")
    t.add_argument("--min-group-s", type=float, default=90,
                   help="start a backend only with at least this many seconds before the deadline")
    t.add_argument("--seed", type=int, default=3407)
    r = sub.add_parser("report", help="merge results files and write docs/benchmarks.md")
    r.add_argument("--add", nargs="*", default=[], help="results JSON files to merge into --results-dir first")
    r.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    r.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"))
    r.add_argument("--readme", default=str(REPO / "README.md"),
                   help="README whose block between bench-headline markers gets the headline (skipped without markers)")
    return parser


# ---------------------------------------------------------------- commands

def cases_for(backend: str, precision: str, args, cuda: bool) -> list[str]:
    if args.cases:
        return [c.strip() for c in args.cases.split(",") if c.strip()]
    return DEFAULT_CASES[(backend, precision)] if cuda else CPU_CASES


def parse_group(text: str) -> tuple[str, str, list[str]]:
    """``unsloth/t4=full,real-pad`` -> ("unsloth", "t4", ["full", "real-pad"])."""
    head, _, cases = text.partition("=")
    backend, _, precision = head.strip().partition("/")
    precision = precision or "native"
    names = [c.strip() for c in cases.split(",") if c.strip()]
    if backend not in BACKENDS or precision not in PRECISIONS or not names:
        raise UserError(f"--group {text!r}: expected BACKEND/PRECISION=CASE,CASE with BACKEND in {', '.join(BACKENDS)} "
                        f"and PRECISION in {', '.join(PRECISIONS)}, e.g. hf/native=full,real-pad")
    return backend, precision, names


def cmd_train(args) -> int:
    clock = Clock(args.deadline_s)
    gpu = gpu_info()
    cuda = bool(gpu)
    shape = args.shape or ("qwen2.5-7b" if cuda else "tiny")
    backends = args.backend or (list(BACKENDS) if cuda else ["hf"])
    precisions = args.precision or ["native"]
    from ai2human.models.loading import parse_target_modules
    from ai2human.runner.params import resolve_run

    params = dict(resolve_run(args.params).params)
    if args.max_seq_length:
        params["max_seq_length"] = args.max_seq_length
    msl = params["max_seq_length"]
    groups = [(b, p, cases_for(b, p, args, cuda)) for p in precisions for b in backends]
    if args.group:
        groups = [parse_group(g) for g in args.group]
    try:
        parsed = {c: parse_case(c, params["per_device_train_batch_size"], params["gradient_accumulation_steps"])
                  for _, _, cases in groups for c in cases}
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.real_rows % 8:
        raise UserError(f"--real-rows {args.real_rows} must be a multiple of 8 (whole optimizer steps)")
    source = bench_data.eda_lengths(args.lengths) if args.lengths else None
    regimes = sorted({c.regime for c in parsed.values()})
    rows = {"full": args.steps * params["per_device_train_batch_size"] * params["gradient_accumulation_steps"],
            "real": args.real_rows, "epoch": args.epoch_rows}
    lengths = {r: bench_data.sample_lengths(r, rows[r], msl, seed=args.seed, source_lengths=source, source_name=args.lengths,
                                            median=args.median, share_over=args.share_over) for r in set(regimes) | {"epoch"}}
    flops = flop_counts(bench_model.SHAPES[shape], params["lora_r"], parse_target_modules(params["lora_target_modules"]))
    out_dir = Path(args.out_dir or os.environ.get("OUT") or REPO / "bench" / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ai2human-bench-"))
    model_dir = Path(args.model_dir).resolve() if args.model_dir else bench_model.default_model_dir(shape)
    today = date.today().isoformat()
    name = bench_report.results_name(today, gpu.get("gpu", "cpu"))
    stem = name.removesuffix(".json")
    print(f"[bench] {gpu.get('gpu', 'CPU')}: shape {shape}; "
          + "; ".join(f"{b}/{p}: {', '.join(c)}" for b, p, c in groups)
          + f"; model folder {model_dir}; results {out_dir / name}", flush=True)

    start = time.monotonic()
    try:
        build = run_build(shape, model_dir, work, out_dir / f"{stem}-build.log", clock, 600)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"[bench] model {'built' if build.get('built') else 'reused'} in {time.monotonic() - start:.0f} s; "
          f"matmul TFLOP/s {build.get('measured_tflops')}", flush=True)
    peaks = {"measured": build.get("measured_tflops") or {}, "datasheet": bench_model.datasheet_tflops(gpu.get("gpu", ""))}
    base_spec = {
        "model_dir": str(model_dir), "work_dir": str(work), "params": params, "steps": args.steps, "skip_steps": args.skip_steps,
        "lengths": {r: {"regime": s.regime, "lengths": s.lengths, "source": s.source, "drawn": s.drawn, "dropped": s.dropped}
                    for r, s in lengths.items()},
        "prompt_share": args.prompt_share, "seed": args.seed, "flops": flops, "peaks": peaks,
    }
    settings = {k: params[k] for k in ("max_seq_length", "per_device_train_batch_size", "gradient_accumulation_steps", "lora_r",
                                       "lora_alpha", "lora_dropout", "lora_target_modules", "optim", "learning_rate",
                                       "gradient_checkpointing", "load_in_4bit", "seed")}
    settings.update(params_file=Path(args.params).name, steps=args.steps, skip_steps=args.skip_steps, real_rows=args.real_rows,
                    prompt_share=args.prompt_share, lengths={r: s.summary() for r, s in lengths.items()})
    all_runs, group_meta = [], []

    def save() -> Path:
        """Merge what has been measured so far into the results file (after every backend: a killed
        command keeps the finished ones)."""
        doc = {
            "kind": bench_report.KIND, "schema": bench_report.SCHEMA, "date": today, "gpu": gpu.get("gpu", "cpu"),
            "machine": {**gpu, "cuda": next((g.get("torch_cuda") for g in group_meta if g.get("torch_cuda")), None),
                        "cpu_count": os.cpu_count(), "platform": platform.platform()},
            "versions": package_versions(), "peaks": peaks, "shape_name": shape, "shape": bench_model.SHAPES[shape],
            "flops": flops, "settings": settings, "model_build": build, "groups": group_meta, "runs": all_runs,
        }
        return bench_report.merge_into(out_dir, doc, name)

    min_start = args.min_group_s if shape != "tiny" else 5.0
    try:
        for backend, precision, cases in groups:
            log = out_dir / f"{stem}-{backend}-{precision}.log"
            runs, meta = run_group(backend, precision, cases, base_spec, work, log, clock, args, min_start)
            all_runs += runs
            group_meta.append(meta)
            path = save()
    finally:
        shutil.rmtree(work, ignore_errors=True)  # specs, events, per-case run folders, Unsloth's compile cache
    merged = bench_report.read_results(path)
    print_summary(all_runs, merged, path, time.monotonic() - clock.start)
    return 0 if all(r.get("status") == "ok" for r in all_runs) else 1


def print_summary(runs: list[dict], doc: dict, path: Path, wall: float) -> None:
    print(f"\n[bench] wrote {path} ({wall:.0f} s)")
    print(f"{'backend/precision/case':44} {'status':8} {'s/step':>7} {'tok/s':>8} {'nonpad/s':>9} {'alloc':>6} {'resv':>6} {'MFU':>6}")
    for r in runs:
        mfu = r.get("mfu_measured_peak")
        print(f"{r['backend'] + '/' + r['precision'] + '/' + r['case']:44} {r.get('status', ''):8} "
              f"{r.get('s_per_step') or '-':>7} {r.get('tokens_per_s') or '-':>8} {r.get('nonpad_tokens_per_s') or '-':>9} "
              f"{r.get('peak_alloc_gib') or '-':>6} {r.get('peak_reserved_gib') or '-':>6} {f'{mfu:.1%}' if mfu else '-':>6}")
        if r.get("status") != "ok":
            print(f"    {str(r.get('error', ''))[:300]}")
    for t in bench_report.check_targets(doc):
        print(f"[target] {'MET ' if t['met'] else 'MISS'} {t['target']}: {t['value']}")


def cmd_report(args) -> int:
    for item in args.add:
        doc = bench_report.read_results(item)
        if doc is None:
            raise UserError(f"{item} is not a training-benchmark results file")
        print(f"merged {item} into {bench_report.merge_into(args.results_dir, doc, Path(item).name)}")
    text = bench_report.write_report(args.results_dir, args.doc, args.readme if Path(args.readme).is_file() else None)
    print(f"wrote {args.doc}")
    if text:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_train(args) if args.command == "train" else cmd_report(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
