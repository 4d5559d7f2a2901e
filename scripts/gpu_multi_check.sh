#!/usr/bin/env bash
# Multi-GPU check of the fine-tuning notebook (issue 9): executes notebooks/02_finetune.ipynb with
# the v5 settings (the notebook's defaults: QLoRA 4-bit, batch 2 x gradient accumulation 4, 20
# steps, paged_adamw_32bit, eval and checkpoints every 20%) on a small random-weight Qwen2 model:
#   hf_1gpu   backend hf, num_gpus 1   (pins CUDA_VISIBLE_DEVICES to the first GPU)
#   hf_2gpu   backend hf, num_gpus 2   (accelerate launch, DDP: batch 2 x accumulation 2 x 2 GPUs)
#   unsloth   backend unsloth, num_gpus 0 (auto): must pin one GPU and say so, as on Kaggle's T4 x2
# and writes the speed-up of 2 GPUs over 1, the peak memory per GPU and the loss agreement to
# $OUT/summary.md.
#
# Prepare here, once, from the repository root: bash scripts/gpu_wheels.sh   (see gpu_finetune_check.sh)
# Then with the device tool, on a machine with two GPUs:
#   run(command="bash scripts/gpu_multi_check.sh", kind="nvidia-h100-x2", carry=[".whl"], timeout_s=600)
# Optional environment: MAX_STEPS (default 20, the v5 run); RUN_TIMEOUT seconds per notebook
# (default 200); SHAPE, a shape of ai2human.bench.model for the random model (default small;
# qwen2.5-0.5b is a size where compute outweighs DDP's communication); SKIP_UNSLOTH=1 leaves out
# the third run.
# For a dry run on a CPU machine (the 2-GPU run becomes 2 gloo CPU processes, no 4-bit):
#   PYTHON=.venv/bin/python SKIP_INSTALL=1 SKIP_UNSLOTH=1 MAX_STEPS=2 bash scripts/gpu_multi_check.sh
# Files in $OUT: 02_finetune_<run>.ipynb (executed reports), logs.txt, nvidia_smi.csv, summary.md.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUT=${OUT:-/tmp/gpu_multi_check}
mkdir -p "$OUT"
MAX_STEPS=${MAX_STEPS:-20}
RUN_TIMEOUT=${RUN_TIMEOUT:-200}
PY=${PYTHON:-python3}
WORK=${WORK:-/dev/shm/ai2human_multi}
rm -rf "$WORK" && mkdir -p "$WORK"
LOG="$OUT/logs.txt"
: > "$LOG"

source "$REPO/scripts/gpu_env.sh"
export AI2HUMAN_CACHE=$WORK/cache
install_kernel
MODEL=$WORK/qwen2-random
build_model "$MODEL" "${SHAPE:-small}"

{
  echo "## machine"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: CPU dry run"
  nvidia-smi topo -m 2>/dev/null | head -5
  $PY -c "
from importlib.metadata import version
names = ('torch', 'transformers', 'trl', 'peft', 'accelerate', 'datasets', 'bitsandbytes', 'unsloth', 'papermill')
def v(n):
    try:
        return version(n)
    except Exception:
        return 'missing'
print(' | '.join(n + ' ' + v(n) for n in names))"
  grep '^random Qwen2' "$LOG"
} > "$WORK/versions.txt" 2>>"$LOG"

# Memory per GPU as nvidia-smi sees it (the kernel's CUDA context included), every 0.5 s.
SMI_PID=
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,index,memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/nvidia_smi.csv" 2>/dev/null &
  SMI_PID=$!
fi

run_notebook() {  # run_notebook NAME [papermill -p args...]
  local name=$1; shift
  echo "=== $name ===" >>"$LOG"
  local start=$SECONDS
  echo "$name start $(date +%Y/%m/%d\ %H:%M:%S)" >> "$WORK/times.txt"
  timeout "$RUN_TIMEOUT" $PY -m papermill notebooks/02_finetune.ipynb "$OUT/02_finetune_$name.ipynb" \
    --cwd "$WORK" --log-output --no-progress-bar \
    -p run_dir "$WORK/run_$name" -p dataset_path "$REPO/data/sample.csv" -p model_name "$MODEL" \
    -p max_seq_length 1024 -p report_to none -p learning_rate 0.001 -p preview_max_new_tokens 32 \
    -p max_steps "$MAX_STEPS" "$@" >>"$LOG" 2>&1
  echo "$name $? $((SECONDS - start))" >> "$WORK/status.txt"
  echo "$name end $(date +%Y/%m/%d\ %H:%M:%S)" >> "$WORK/times.txt"
}

run_notebook hf_1gpu -p backend hf -p num_gpus 1
run_notebook hf_2gpu -p backend hf -p num_gpus 2
if [[ -z "${SKIP_UNSLOTH:-}" ]]; then
  run_notebook unsloth -p backend unsloth -p num_gpus 0
fi
[[ -n "$SMI_PID" ]] && kill "$SMI_PID" 2>/dev/null

$PY - "$WORK" "$OUT" <<'PY'
# summary.md: one row per run from its train_metrics.json, the speed-up, the losses side by side.
import json, sys
from collections import defaultdict
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
lines = ["# 02_finetune on several GPUs (issue 9)", "", (work / "versions.txt").read_text(), "",
         "| run | exit | wall s | processes | per-device x accum | global batch | steps | train s | tokens/s | peak GiB per GPU (torch) | first eval | final eval |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
metrics, notes = {}, []
for line in (work / "status.txt").read_text().split("\n"):
    if not line.strip():
        continue
    name, rc, wall = line.split(" ")
    path = work / f"run_{name}" / "train_metrics.json"
    m = json.loads(path.read_text()) if rc == "0" and path.is_file() else {}
    metrics[name] = m
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
    lines.append("| " + " | ".join([
        name, rc, wall, fmt(m.get("processes")),
        f"{m.get('per_device_train_batch_size', '')} x {m.get('gradient_accumulation_steps', '')}",
        fmt(m.get("global_batch")), fmt(m.get("global_step")), fmt(m.get("train_runtime_s")),
        fmt(m.get("train_tokens_per_second")), ", ".join(fmt(x) for x in m.get("peak_gpu_memory_gib_per_gpu", [])),
        fmt(m.get("first_eval_loss")), fmt(m.get("final_eval_loss"))]) + " |")
    nb = out / f"02_finetune_{name}.ipynb"
    if nb.is_file():
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    notes.append(f"- {name}: cell {i}: {o['ename']}: {o['evalue'][:500]}")
                text = "".join(o.get("text", "")) if o.get("output_type") == "stream" else ""
                for t in text.splitlines():
                    if t.startswith(("backend=", "GPU:", "training on", "pinned", "no GPU", "rank ", "step ")) \
                            or "GPUs visible" in t or "processes (DDP)" in t or t.startswith("1 process"):
                        notes.append(f"- {name}: {t[:300]}")
one, two = metrics.get("hf_1gpu", {}), metrics.get("hf_2gpu", {})
lines.append("")
if one.get("train_runtime_s") and two.get("train_runtime_s"):
    lines.append(f"**Speed-up of 2 GPUs over 1** (trainer's train_runtime, same global batch and steps): "
                 f"{one['train_runtime_s'] / two['train_runtime_s']:.2f}x; tokens/s "
                 f"{two.get('train_tokens_per_second', 0) / max(one.get('train_tokens_per_second') or 1, 1e-9):.2f}x")
    logs = {}
    for name in ("hf_1gpu", "hf_2gpu"):
        recs = [json.loads(l) for l in (work / f"run_{name}" / "train_log.jsonl").read_text().splitlines() if l.strip()]
        logs[name] = {r["step"]: r["loss"] for r in recs if "loss" in r}
    common = sorted(set(logs["hf_1gpu"]) & set(logs["hf_2gpu"]))
    diffs = [abs(logs["hf_2gpu"][s] - logs["hf_1gpu"][s]) / abs(logs["hf_1gpu"][s]) for s in common]
    lines.append(f"**Train loss, 2 GPUs vs 1** at steps {common}: max relative difference {max(diffs):.2e} "
                 "(the same examples per step; floating-point sums in another order)")
else:
    lines.append("no speed-up: a run failed (see the notes and logs.txt)")
smi = out / "nvidia_smi.csv"
if smi.is_file() and smi.stat().st_size:
    # peak memory.used per GPU during each run, from the timestamps in times.txt
    import datetime as dt
    spans = defaultdict(dict)
    for l in (work / "times.txt").read_text().splitlines():
        name, what, day, clock = l.split(" ")
        spans[name][what] = dt.datetime.strptime(f"{day} {clock}", "%Y/%m/%d %H:%M:%S")
    peaks = defaultdict(lambda: defaultdict(int))
    for l in smi.read_text().splitlines():
        try:
            stamp, index, used = [x.strip() for x in l.split(",")]
            t = dt.datetime.strptime(stamp.split(".")[0], "%Y/%m/%d %H:%M:%S")
        except ValueError:
            continue
        for name, s in spans.items():
            if s.get("start") and s.get("end") and s["start"] <= t <= s["end"]:
                peaks[name][index] = max(peaks[name][index], int(used))
    lines.append("")
    lines.append("**Peak memory.used per GPU (nvidia-smi, MiB, the notebook kernel included):** " + "; ".join(
        f"{name}: " + ", ".join(f"GPU{i} {v}" for i, v in sorted(p.items())) for name, p in peaks.items()))
lines += ["", "## notes the notebooks printed", *notes]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
