"""What a run was made from: the manifest of a new run folder, and the dataset's fingerprint.

The fingerprint (the file's SHA-256) and the split's row numbers let a later invocation notice
that the dataset changed under a run: evaluating on rows the model was trained on would
otherwise look like a result.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from ai2human.rundir import Manifest
from ai2human.runner.params import NOTEBOOKS, REPO_ROOT, RunSpec

# Versions worth knowing when reading an old run.
KEY_PACKAGES = (
    "torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth",
    "papermill", "scikit-learn", "sentence-transformers", "pandas", "numpy", "ai2human",
)


def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    return {
        "commit": commit.stdout.strip() if commit.returncode == 0 else None,
        "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
    }


def package_versions() -> dict:
    from importlib import metadata

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware() -> dict:
    from ai2human.models.hardware import detect_hardware

    try:
        return detect_hardware().to_dict()
    except Exception as exc:  # a broken CUDA driver must not stop the run from being recorded
        return {"error": f"{type(exc).__name__}: {exc}"}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_record(params: dict) -> dict | None:
    """``{"path", "sha256", "bytes"}`` of the run's dataset file, or None when it reads none."""
    path = params.get("dataset_path")
    if not path or not Path(path).is_file():
        return None
    return {"path": str(path), "sha256": file_sha256(path), "bytes": Path(path).stat().st_size}


def split_record(pairs, params: dict) -> dict | None:
    """The train and validation split the notebooks will make (``data.pairs.split_record``)."""
    if pairs is None or "val_size" not in params:
        return None
    from ai2human.data.pairs import split_pairs, split_record as record

    train, val = split_pairs(pairs, params["val_size"], params.get("split_seed", 42))
    return {"val_size": params["val_size"], "split_seed": params.get("split_seed", 42), **record(train, val)}


def new_manifest(spec: RunSpec, params: dict, run_dir: Path, executor: str = "local") -> Manifest:
    """The manifest of a new run folder, local or Kaggle: the parameters and where they came from,
    and (for local runs) the code, package versions and hardware they ran with."""
    params_file = Path(spec.params_file)
    provenance = {
        "description": spec.meta.get("description", ""),
        "params_file": str(params_file),
        "params_file_text": params_file.read_text(encoding="utf-8") if params_file.is_file() else None,
        "overrides": spec.overrides,
        "meta": spec.meta,
        "git": git_state(),
        "dataset": dataset_record(params),
    }
    if executor == "local":  # a Kaggle kernel records its own machine in its output
        provenance.update(python=sys.version.split()[0], packages=package_versions(), hardware=hardware())
    notebooks = {short: NOTEBOOKS[short] for short in spec.notebooks} if executor == "local" else {}
    return Manifest.new(run_dir, run_name=spec.run_name, notebooks=notebooks, params=params, executor=executor, **provenance)
