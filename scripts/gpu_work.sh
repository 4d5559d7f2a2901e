# Sourced first, from the repository root, by scripts/gpu_stages.sh and scripts/gpu_v5_run.sh:
#   source scripts/gpu_work.sh OUT_DEFAULT LOG_NAME
# sets $OUT (what the device call brings back), $WORK (the scratch folder, in memory where /dev/shm
# is writable; emptied unless KEEP_WORK=1), a fresh $LOG in $OUT, and $PY: the image's python3 on
# the device, this checkout's .venv with nothing installed (SKIP_INSTALL=1) under CPU_DRY_RUN=1.
OUT=${OUT:-$1}
mkdir -p "$OUT"
WORK=${WORK:-/dev/shm/ai2human_v5}
[[ -d /dev/shm && -w /dev/shm ]] || WORK=/tmp/ai2human_v5
[[ -n "${KEEP_WORK:-}" ]] || { rm -rf "$WORK" && mkdir -p "$WORK"; }
LOG=$OUT/$2
: > "$LOG"
if [[ -n "${CPU_DRY_RUN:-}" ]]; then
  PY=${PYTHON:-.venv/bin/python} SKIP_INSTALL=1
else
  PY=${PYTHON:-python3}
fi
