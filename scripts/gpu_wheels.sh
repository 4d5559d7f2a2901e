#!/usr/bin/env bash
# Builds .whl/ for scripts/gpu_finetune_check.sh: the Unsloth / bitsandbytes / TRL wheels from
# ../shared/device/carry-wheels.sh, plus what papermill needs to execute a notebook there (the GPU
# image has torch, transformers, peft, accelerate, pandas, matplotlib, pyyaml, but no Jupyter).
# All for CPython 3.12 on manylinux x86_64, no dependencies resolved (the list below is the
# closure of papermill + ipykernel minus what the image already holds). About 45 MB in all; the
# device tool carries at most 64 MiB.
#   bash scripts/gpu_wheels.sh                  # writes .whl/ (run from anywhere in the checkout)
#   SKIP_CARRY=1 bash scripts/gpu_wheels.sh     # .whl/ already holds carry-wheels.sh's set: add the Jupyter wheels only
#   SKIP_CARRY=1 bash scripts/gpu_wheels.sh /tmp/whl   # a dry run into another folder
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}  # another folder for a dry run
if [[ -z "${SKIP_CARRY:-}" && -x ../shared/device/carry-wheels.sh ]]; then
  bash ../shared/device/carry-wheels.sh "$dest"
else
  echo "carry-wheels.sh skipped (SKIP_CARRY set, or ../shared/device/carry-wheels.sh missing): Jupyter wheels only" >&2
  mkdir -p "$dest"
fi
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for spec in papermill==2.7.0 nbclient==0.11.0 nbformat==5.11.1 ipykernel==7.4.0 jupyter_client==8.10.0 \
            jupyter_core==5.9.1 traitlets==5.16.1 pyzmq==27.3.0 tornado==6.6.1 ipython==9.18.1 \
            ipython_pygments_lexers==1.1.1 comm==0.2.3 debugpy==1.8.22 matplotlib_inline==0.2.2 \
            nest_asyncio2==1.7.4 entrypoints==0.4.2 tenacity==9.2.1 fastjsonschema==2.22.3 \
            jsonschema==4.26.0 jsonschema_specifications==2025.9.1 referencing==0.37.0 rpds_py==2026.9.1 \
            platformdirs==4.14.8 jedi==0.20.1 parso==0.8.7 pexpect==4.9.0 ptyprocess==0.7.0 \
            prompt_toolkit==3.0.53 wcwidth==0.9.4 stack_data==0.6.3 executing==2.3.0 asttokens==3.0.2 \
            pure_eval==0.2.4; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d "$dest" "$spec"
done
du -sh "$dest"
