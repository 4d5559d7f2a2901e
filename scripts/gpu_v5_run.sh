#!/usr/bin/env bash
# The user's own command at 7B scale on the lent GPU machine (issue 14): `python runner/run.py
# params/v5.yaml` - all three notebooks through the runner, as a user runs them - with a random-weight
# model in Qwen2.5-7B's exact shape and the real Qwen2.5 tokenizer (ai2human.bench.v5_run) on
# synthetic pairs (data/sample.csv's generator), W&B off. T4=15 emulates a T4 in every process
# (fp16, a 15 GiB memory cap: scripts/t4_emulation). Results in $OUT: v5-summary.json (per-notebook
# status and wall time, training and generation figures), the run's manifest and metrics, the log.
#
#   here, once: bash scripts/gpu_wheels.sh     (.whl/, ~54 MB: the whole notebook stack)
#   device:     run(command="T4=15 bash scripts/gpu_v5_run.sh", carry=[".whl"], timeout_s=600)
#   CPU dry run of this script (tiny model, nothing installed, seconds of training):
#               CPU_DRY_RUN=1 bash scripts/gpu_v5_run.sh
# Optional: ROWS (synthetic pairs, default 1200 as in issue 14's data), EVAL_SAMPLES (default: the
# notebook's 100), SETS (extra --set arguments, e.g. SETS="max_steps=10"), ONLY (the runner's --only,
# e.g. ONLY=finetune,evaluate when one device call cannot hold every notebook), PARAMS (the params
# file, default params/v5.yaml; e.g. params/v5-dpo.yaml for the preference stage).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# KEEP_WORK=1 (scripts/gpu_stages.sh) keeps the folder and the stand-in model already built there.
source scripts/gpu_work.sh /tmp/gpu_v5_run v5-log.txt
rm -rf "$WORK/runs"
source scripts/gpu_env.sh
export AI2HUMAN_CACHE=$WORK/cache
install_kernel

sets=(run_name=v5 "dataset_path=$WORK/pairs.csv" report_to=none)
if [[ -n "${CPU_DRY_RUN:-}" ]]; then
  ROWS=${ROWS:-120}
  sets+=(model_name=local:tiny-qwen2 max_steps=2 eval_samples=${EVAL_SAMPLES:-6} max_new_tokens=16
         preview_max_new_tokens=8 max_seq_length=512 load_in_4bit=false)
else
  ROWS=${ROWS:-1200}
  if [[ ! -f "$WORK/model/config.json" ]]; then
    $PY -m ai2human.bench.v5_run model "$WORK/model" >>"$LOG" 2>&1 || { echo "building the 7B stand-in failed"; tail -30 "$LOG"; exit 1; }
  fi
  $PY -m ai2human.bench.v5_run minilm >>"$LOG" 2>&1 || { echo "the MiniLM stand-in failed"; tail -30 "$LOG"; exit 1; }
  sets+=("model_name=$WORK/model")
  [[ -n "${EVAL_SAMPLES:-}" ]] && sets+=("eval_samples=$EVAL_SAMPLES")
fi
for s in ${SETS:-}; do sets+=("$s"); done
$PY -m ai2human.data.sample --rows "$ROWS" --out "$WORK/pairs.csv" >>"$LOG" 2>&1
if [[ -n "${T4:-}" ]]; then
  export AI2HUMAN_T4_EMULATION=$T4 PYTHONPATH=$REPO/scripts/t4_emulation:$PYTHONPATH
fi
args=()
for s in "${sets[@]}"; do args+=(--set "$s"); done
[[ -n "${ONLY:-}" ]] && args+=(--only "$ONLY")
PARAMS=${PARAMS:-params/v5.yaml}
echo "python runner/run.py $PARAMS --out $WORK/runs ${args[*]}" | tee -a "$LOG"
start=$SECONDS
# The device tool kills the call at its limit and returns only what is in $OUT: stop the runner in
# time (RUN_LIMIT seconds from the script's start, default 540) so the summary below is still written.
limit=$(( ${RUN_LIMIT:-540} - SECONDS ))
timeout --signal=TERM --kill-after=15 "$limit" $PY runner/run.py "$PARAMS" --out "$WORK/runs" "${args[@]}" >>"$LOG" 2>&1
rc=$?
$PY -m ai2human.bench.v5_run summary "$WORK/runs/v5" "$OUT/v5-summary.json" --wall $((SECONDS - start)) --rc $rc \
  --t4 "${T4:-0}" | tee -a "$LOG"
for f in manifest.json train_metrics.json dpo_metrics.json eval_metrics.json; do
  [[ -f "$WORK/runs/v5/$f" ]] && cp "$WORK/runs/v5/$f" "$OUT/v5-$f"
done
echo "runner exit $rc after $((SECONDS - start)) s; $OUT/v5-summary.json"
tail -5 "$LOG"
exit $rc
