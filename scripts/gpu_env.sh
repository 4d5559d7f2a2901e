# Sourced by the scripts/gpu_*.sh checks: the set-up every call on the lent GPU machine needs.
# That machine has torch, transformers, peft and accelerate but no internet: Unsloth, TRL,
# bitsandbytes and the Jupyter stack come as wheels in .whl/ (bash scripts/gpu_wheels.sh here).
# Expects REPO, PY and LOG to be set; SKIP_INSTALL=1 skips the wheels (a CPU dry run).
if [[ -z "${SKIP_INSTALL:-}" ]]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 \
    || { echo "pip install of .whl/ failed (run scripts/gpu_wheels.sh here first)"; tail -20 "$LOG"; exit 1; }
fi
# Our package from the checkout (no install: its dependencies are the image's plus .whl/); child
# processes (papermill kernels, accelerate workers) inherit PYTHONPATH.
export PYTHONPATH=/tmp/site:$REPO/src
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1
export WANDB_MODE=disabled PYTHONUNBUFFERED=1

# build_model DIR [SHAPE]: a random-weight Qwen2 with the tiny offline tokenizer (ai2human.bench.model;
# default shape "small"); a Jupyter kernel spec for papermill in $WORK.
build_model() {
  $PY -m ai2human.bench.model "${2:-small}" "$1" >>"$LOG" 2>&1 \
    || { echo "building the random model failed"; tail -30 "$LOG"; exit 1; }
}
install_kernel() {
  $PY -m ipykernel install --prefix "$WORK/jupyter" --name python3 >>"$LOG" 2>&1
  # ... and nbconvert's templates, which pip --target puts under /tmp/site/share (the HTML reports need them).
  export JUPYTER_PATH=$WORK/jupyter/share/jupyter:/tmp/site/share/jupyter
}
