#!/usr/bin/env bash
# The preference stage's DPO cost and the pairs stage's throughput at 7B shape on the lent GPU machine
# (issues 19 and 18), in T4 emulation by default (fp16, 15 GiB cap: scripts/t4_emulation).
#   here, once: bash scripts/gpu_wheels.sh
#   device:     run(command="bash scripts/gpu_stages.sh", carry=[".whl"], timeout_s=600)
# 1. bench.dpo_step: sampling k=4 rewrites for a few inputs, then DPO steps on pairs filling 2048 tokens
#    (seconds per step, peak memory) -> $OUT/dpo-step.json
# 2. the pairs notebook through the runner (scripts/gpu_v5_run.sh, ONLY=pairs) with the 7B stand-in as
#    styler on PAIRS_ROWS training rows -> $OUT/v5-summary.json (its takeaways hold tokens/s, pairs/min)
# Optional: T4 (GiB, default 15; 0 for the full GPU), PAIRS_ROWS (default 32), DPO_STEPS (default 3),
# STAGES (default "dpo pairs"; e.g. STAGES=dpo), DPO_LIMIT (seconds for the Unsloth run, default 240),
# DPO_EXTRA (more bench.dpo_step arguments, e.g. "--inputs 32 --new-tokens 512": sampling at scale).
# Should the Unsloth DPO run fail, the transformers + PEFT path is measured instead (dpo-step-hf.json),
# so one device call still returns figures; the log says why Unsloth failed.
# CPU_DRY_RUN=1 bash scripts/gpu_stages.sh runs the same plumbing here on the tiny model.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
source scripts/gpu_work.sh /tmp/gpu_stages stages-log.txt
if [[ -n "${CPU_DRY_RUN:-}" ]]; then  # this script's plumbing on a CPU: the tiny model, seconds of work
  T4=0 MODEL=local:tiny-qwen2
  DPO_ARGS=(--max-length 700 --new-tokens 16 --inputs 2) STYLER=(styler_model=local:tiny-qwen2 styler_max_new_tokens=32)
else
  MODEL=$WORK/model DPO_ARGS=(${DPO_EXTRA:-}) STYLER=("styler_model=$WORK/model")
fi
source scripts/gpu_env.sh
T4=${T4-15}
if [[ -z "${CPU_DRY_RUN:-}" ]]; then
  $PY -m ai2human.bench.v5_run model "$WORK/model" >>"$LOG" 2>&1 || { echo "building the 7B stand-in failed"; tail -30 "$LOG"; exit 1; }
fi
if [[ "$T4" != 0 ]]; then
  export AI2HUMAN_T4_EMULATION=$T4 PYTHONPATH=$REPO/scripts/t4_emulation:$PYTHONPATH
fi
STAGES=${STAGES:-dpo pairs}
dpo_step() {  # dpo_step LIMIT_S OUT_JSON [extra args]: one bench.dpo_step run under a time limit
  local limit=$1 json=$2; shift 2
  timeout --signal=TERM --kill-after=15 "$limit" $PY -m ai2human.bench.dpo_step "$MODEL" "$json" \
    --steps "${DPO_STEPS:-3}" "${DPO_ARGS[@]}" "$@" >>"$LOG" 2>&1
}
if [[ " $STAGES " == *" dpo "* ]]; then
  start=$SECONDS
  if ! dpo_step "${DPO_LIMIT:-240}" "$OUT/dpo-step.json"; then
    echo "dpo_step (backend auto) failed or timed out after $((SECONDS - start)) s:"; grep -v -i warn "$LOG" | tail -25
    left=$(( ${RUN_LIMIT:-560} - SECONDS - 20 ))
    if (( left > 90 )); then
      echo "--- transformers + PEFT instead, $left s"
      dpo_step "$left" "$OUT/dpo-step-hf.json" --backend hf || { echo "dpo_step (hf) failed too"; grep -v -i warn "$LOG" | tail -15; }
      cat "$OUT/dpo-step-hf.json" 2>/dev/null
    fi
  fi
  echo "dpo_step: $((SECONDS - start)) s"; cat "$OUT/dpo-step.json" 2>/dev/null
fi
[[ " $STAGES " == *" pairs "* ]] || exit 0
# The model folder is rebuilt by gpu_v5_run.sh (it starts from a clean work folder): keep this one.
[[ "$T4" != 0 ]] || unset T4
SKIP_INSTALL=1 KEEP_WORK=1 ONLY=pairs RUN_LIMIT=$(( ${RUN_LIMIT:-560} - SECONDS )) \
  SETS="pairs_source=reverse pairs_rows=${PAIRS_ROWS:-32} ${STYLER[*]}" bash scripts/gpu_v5_run.sh
