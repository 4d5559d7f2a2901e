#!/usr/bin/env bash
# GPU check of the fine-tuning notebook (issue 4): executes notebooks/02_finetune.ipynb end to end
# with backend unsloth and with backend hf (transformers + PEFT + bitsandbytes 4-bit) on a small
# random-weight Qwen2-architecture model, and leaves the executed notebooks and a summary in $OUT.
#
# Prepare here, once, from the repository root (needs PyPI; ~45 MB, ignored by git):
#   bash scripts/gpu_wheels.sh
#     = ../shared/device/carry-wheels.sh (unsloth, unsloth_zoo, bitsandbytes, trl, datasets, ...)
#     + papermill nbclient nbformat ipykernel jupyter_client jupyter_core traitlets pyzmq tornado
#       ipython and their dependencies, all --only-binary for CPython 3.12 manylinux x86_64.
# Then with the device tool (one H100 or H200; the machine has no internet):
#   run(command="bash scripts/gpu_finetune_check.sh", carry=[".whl"], timeout_s=600)
# Optional environment: MAX_STEPS (default 20); RUN_TIMEOUT seconds per notebook (default 240);
# EXTRA=1 also runs unsloth + packing, hf + padding_free, and a resume of the unsloth run (10 more
# steps from its last checkpoint): run that in a second call, as five notebooks may not fit in 600 s.
# For a dry run on a CPU machine: PYTHON=.venv/bin/python SKIP_INSTALL=1 bash scripts/gpu_finetune_check.sh
# Files in $OUT: 02_finetune_<run>.ipynb (executed reports), logs.txt, summary.md.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUT=${OUT:-/tmp/gpu_finetune_check}
mkdir -p "$OUT"
MAX_STEPS=${MAX_STEPS:-20}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
PY=${PYTHON:-python3}
WORK=${WORK:-/dev/shm/ai2human_check}
rm -rf "$WORK" && mkdir -p "$WORK"
LOG="$OUT/logs.txt"
: > "$LOG"

source "$REPO/scripts/gpu_env.sh"
export AI2HUMAN_CACHE=$WORK/cache
install_kernel
MODEL=$WORK/qwen2-random
build_model "$MODEL"

{
  echo "## versions"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "
from importlib.metadata import version
names = ('torch', 'transformers', 'trl', 'peft', 'accelerate', 'datasets', 'bitsandbytes', 'unsloth', 'unsloth_zoo', 'papermill')
def v(n):
    try:
        return version(n)
    except Exception:
        return 'missing'
print(' | '.join(n + ' ' + v(n) for n in names))"
} > "$WORK/versions.txt" 2>>"$LOG"

RUNS=()
run_notebook() {  # run_notebook NAME RUN_DIR [papermill -p args...]
  local name=$1 run_dir=$2; shift 2
  echo "=== $name ===" >>"$LOG"
  local start=$SECONDS
  timeout "$RUN_TIMEOUT" $PY -m papermill notebooks/02_finetune.ipynb "$OUT/02_finetune_$name.ipynb" \
    --cwd "$WORK" --log-output --no-progress-bar \
    -p run_dir "$run_dir" -p dataset_path "$REPO/data/sample.csv" -p model_name "$MODEL" \
    -p max_seq_length 1024 -p report_to none -p learning_rate 0.001 -p preview_max_new_tokens 64 \
    "$@" >>"$LOG" 2>&1
  echo "$name $? $((SECONDS - start)) $run_dir" >> "$WORK/status.txt"
  RUNS+=("$name")
}

run_notebook unsloth "$WORK/run_unsloth" -p backend unsloth -p max_steps "$MAX_STEPS"
run_notebook hf "$WORK/run_hf" -p backend hf -p max_steps "$MAX_STEPS"
if [[ "${EXTRA:-0}" == 1 ]]; then
  run_notebook unsloth_packing "$WORK/run_unsloth_packing" -p backend unsloth -p max_steps "$MAX_STEPS" -p packing True
  run_notebook hf_padding_free "$WORK/run_hf_padding_free" -p backend hf -p max_steps "$MAX_STEPS" -p padding_free True
  # Same run folder as the first run, 10 more steps: must resume from its last checkpoint.
  run_notebook unsloth_resume "$WORK/run_unsloth" -p backend unsloth -p max_steps $((MAX_STEPS + 10))
fi

$PY - "$WORK" "$OUT" <<'PY'
# summary.md: one row per notebook run, from its train_metrics.json and executed notebook.
import json, sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
lines = ["# 02_finetune on the GPU", "", (work / "versions.txt").read_text() if (work / "versions.txt").exists() else "", "",
         "| run | exit | wall s | backend | dtype | 4-bit | steps | first eval | final eval | train s | tokens/s | peak GiB | resumed from | warnings |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
errors = []
for line in (work / "status.txt").read_text().split("\n"):
    if not line.strip():
        continue
    name, rc, wall, run_dir = line.split(" ", 3)
    m = {}
    path = Path(run_dir) / "train_metrics.json"
    if rc == "0" and path.is_file():
        m = json.loads(path.read_text())
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
    lines.append("| " + " | ".join([name, rc, wall] + [fmt(m.get(k)) for k in (
        "backend", "dtype", "load_in_4bit", "global_step", "first_eval_loss", "final_eval_loss", "train_runtime_s",
        "train_tokens_per_second", "peak_gpu_memory_gib", "resumed_from_step")] + [", ".join(m.get("findings", []))]) + " |")
    nb = out / f"02_finetune_{name}.ipynb"
    if rc != "0" and nb.is_file():
        cells = json.loads(nb.read_text())["cells"]
        for i, cell in enumerate(cells):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    errors.append(f"- {name}: cell {i} (`{cell['source'][0].strip() if cell['source'] else ''}`): {o['ename']}: {o['evalue'][:500]}")
    # the notes the notebook printed about backend, batching and resume
    if nb.is_file():
        for cell in json.loads(nb.read_text())["cells"]:
            for o in cell.get("outputs", []):
                text = "".join(o.get("text", "")) if o.get("output_type") == "stream" else ""
                for t in text.splitlines():
                    if t.startswith(("backend=", "resuming", "no checkpoint", "packing", "padding_free", "optim ", "[WARNING]")):
                        errors.append(f"  - {name}: {t[:300]}")
lines += ["", "## errors and notes", *errors] if errors else []
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
