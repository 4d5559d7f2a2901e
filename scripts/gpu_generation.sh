#!/usr/bin/env bash
# The generation benchmark on the lent GPU machine (issue 14): tokens/s per engine and batch of the
# evaluation's generate() at Qwen2.5-7B shape, 4-bit, against the memory-bandwidth roofline.
#   bash scripts/gpu_wheels.sh here first (.whl/: Unsloth, bitsandbytes, ...), then on the device:
#   bash scripts/gpu_generation.sh engines      # one H200, bf16: ours vs raw Unsloth, greedy check
#   bash scripts/gpu_generation.sh t4           # fp16 under 15 GiB: the evaluation's 100 x 2 x 512
#   bash scripts/gpu_generation.sh engines t4   # both, one after the other
# Results: $OUT/generation-<suite>.json (copy into bench/results/, then python -m ai2human.bench report).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD PY=${PY:-python3} LOG=${OUT:-/tmp}/generation-setup.log
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for suite in "${@:-engines}"; do
  $PY -m ai2human.bench.generation --suite "$suite" --out-dir "${OUT:-bench/results}" \
    --worker-timeout "${WORKER_TIMEOUT:-420}" 2>&1 | tee -a "${OUT:-/tmp}/generation-$suite.log" | grep -v -i "warn" \
    || echo "suite $suite failed"
done
