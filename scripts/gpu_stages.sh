#!/usr/bin/env bash
# The preference stage's DPO cost and the pairs stage's throughput at 7B shape on the lent GPU machine
# (issues 19 and 18), in T4 emulation by default (fp16, 15 GiB cap: scripts/t4_emulation).
#   here, once: bash scripts/gpu_wheels.sh
#   device:     run(command="bash scripts/gpu_stages.sh", carry=[".whl"], timeout_s=600)
# 1. bench.dpo_step: sampling k=4 rewrites for a few inputs, then DPO steps on pairs filling 2048 tokens
#    (seconds per step, peak memory) -> $OUT/dpo-step.json
# 2. the pairs notebook through the runner (scripts/gpu_v5_run.sh, ONLY=pairs) with the 7B stand-in as
#    styler on PAIRS_ROWS training rows -> $OUT/v5-summary.json (its takeaways hold tokens/s, pairs/min)
# Optional: T4 (GiB, default 15; 0 for the full GPU), PAIRS_ROWS (default 32), DPO_STEPS (default 3).
# CPU_DRY_RUN=1 bash scripts/gpu_stages.sh runs the same plumbing here on the tiny model.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUT=${OUT:-/tmp/gpu_stages}
mkdir -p "$OUT"
WORK=${WORK:-/dev/shm/ai2human_v5}
[[ -d /dev/shm && -w /dev/shm ]] || WORK=/tmp/ai2human_v5
rm -rf "$WORK" && mkdir -p "$WORK"
LOG=$OUT/stages-log.txt
: > "$LOG"
if [[ -n "${CPU_DRY_RUN:-}" ]]; then  # this script's plumbing on a CPU: the tiny model, seconds of work
  PY=${PYTHON:-.venv/bin/python} SKIP_INSTALL=1 T4=0 MODEL=local:tiny-qwen2
  DPO_ARGS=(--max-length 700 --new-tokens 16 --inputs 2) STYLER=(styler_model=local:tiny-qwen2 styler_max_new_tokens=32)
else
  PY=${PYTHON:-python3} MODEL=$WORK/model DPO_ARGS=() STYLER=("styler_model=$WORK/model")
fi
source scripts/gpu_env.sh
T4=${T4-15}
if [[ -z "${CPU_DRY_RUN:-}" ]]; then
  $PY -m ai2human.bench.v5_run model "$WORK/model" >>"$LOG" 2>&1 || { echo "building the 7B stand-in failed"; tail -30 "$LOG"; exit 1; }
fi
if [[ "$T4" != 0 ]]; then
  export AI2HUMAN_T4_EMULATION=$T4 PYTHONPATH=$REPO/scripts/t4_emulation:$PYTHONPATH
fi
start=$SECONDS
timeout --signal=TERM --kill-after=15 "${DPO_LIMIT:-240}" $PY -m ai2human.bench.dpo_step "$MODEL" "$OUT/dpo-step.json" \
  --steps "${DPO_STEPS:-3}" "${DPO_ARGS[@]}" >>"$LOG" 2>&1 || { echo "dpo_step failed or timed out"; grep -v -i warn "$LOG" | tail -25; }
echo "dpo_step: $((SECONDS - start)) s"; cat "$OUT/dpo-step.json" 2>/dev/null
# The model folder is rebuilt by gpu_v5_run.sh (it starts from a clean work folder): keep this one.
[[ "$T4" != 0 ]] || unset T4
SKIP_INSTALL=1 KEEP_WORK=1 ONLY=pairs RUN_LIMIT=$(( ${RUN_LIMIT:-560} - SECONDS )) \
  SETS="pairs_source=reverse pairs_rows=${PAIRS_ROWS:-32} ${STYLER[*]}" bash scripts/gpu_v5_run.sh
