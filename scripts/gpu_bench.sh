#!/usr/bin/env bash
# The training benchmark's commands on the lent GPU machine, one device call each (issue 8).
#
#   bash scripts/gpu_bench.sh unsloth   # Unsloth bf16: full rows, then realistic lengths with every lever (~8-9 min)
#   bash scripts/gpu_bench.sh hf-t4     # transformers + PEFT bf16 (full rows, realistic), then both backends in
#                                       # fp16 with the process capped at 15 GiB (a T4's budget), full rows (~8-9 min)
#   bash scripts/gpu_bench.sh epoch     # optional: one measured epoch of 3000 realistic rows, best lever (~7-8 min)
#   bash scripts/gpu_bench.sh unsloth --group unsloth/native=real-grouped-b8   # extra args go to `bench train`;
#                                       # any --group replaces the call's own groups
#
# With the device tool, from the repo root, carrying the wheels the image lacks (Unsloth, bitsandbytes,
# TRL, datasets...: ../shared/device/carry-wheels.sh or scripts/gpu_wheels.sh):
#   run(command="bash scripts/gpu_bench.sh unsloth", carry=[".whl"], timeout_s=600)
# Each call builds the random-weight Qwen2.5-7B-shape model in /dev/shm (~15 GB, under a minute),
# writes $OUT/<date>-<gpu>.json plus a log per backend, and stops itself BENCH_BUDGET_S seconds after
# it started (default 550) with whatever it measured, so the 600 s limit never loses the results.
# Back here: .venv/bin/python -m ai2human.bench report --add <files_at>/<date>-<gpu>.json
# CPU dry run of the plumbing: PYTHON=.venv/bin/python SKIP_INSTALL=1 OUT=/tmp/b bash scripts/gpu_bench.sh cpu
set -euo pipefail
cd "$(dirname "$0")/.."
call=${1:?usage: gpu_bench.sh unsloth|hf-t4|epoch|cpu [extra bench train args]}
shift
budget=${BENCH_BUDGET_S:-550}
PY=${PYTHON:-python3}

REPO=$PWD
LOG=$(mktemp)
source scripts/gpu_env.sh
export TOKENIZERS_PARALLELISM=false
out=${OUT:-bench/results}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,temperature.gpu --format=csv,noheader || true

case $call in
  unsloth) groups=(--group "unsloth/native=full,real-pad,real-packing,real-rebalance-b4,real-padfree,real-rebalance,real-grouped-b4") ;;
  hf-t4)   groups=(--group "hf/native=full,real-pad" --group "unsloth/t4=full,real-rebalance-b4" --group "hf/t4=full") ;;
  epoch)   groups=(--group "unsloth/native=epoch-rebalance-b4") ;;
  cpu)     groups=(--group "hf/native=full,real-pad,real-packing" --shape tiny --max-seq-length 256 --real-rows 16 --steps 3) ;;
  *) echo "unknown call '$call': use unsloth, hf-t4, epoch or cpu" >&2; exit 2 ;;
esac
for arg in "$@"; do [[ $arg == --group ]] && groups=(); done
$PY -m ai2human.bench train "${groups[@]}" --out-dir "$out" --deadline-s $((budget - SECONDS)) "$@"
