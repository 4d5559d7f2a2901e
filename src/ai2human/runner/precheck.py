"""Checks before a local run creates anything: paths, the dataset itself, and the hardware.

A problem found here costs a second; the same problem found by a notebook costs a kernel start,
a partial report and a run folder to clean up.
"""

from __future__ import annotations

import re
from pathlib import Path

from ai2human.errors import HardwareError, ParamsError
from ai2human.models.tiny import is_local_model
from ai2human.rules import format_problems
from ai2human.runner.params import REPO_ROOT, RunSpec

# Notebooks that load the model for training or generation and so need a GPU for a real model.
MODEL_NOTEBOOKS = {"pairs", "finetune", "prefer", "evaluate"}


def _is_path_param(name: str) -> bool:
    return name.endswith("_path") or name.endswith("_dir")


def resolve_paths(spec: RunSpec, cwd: Path | None = None) -> dict:
    """Parameters with relative paths made absolute.

    A path the user wrote (params file or --set) is relative to where they ran the command; a
    notebook default (data/sample.csv) is relative to the repository. Kernels run in the run
    folder, so they must get absolute paths.
    """
    cwd = Path(cwd or Path.cwd())
    params = dict(spec.params)
    for name, value in params.items():
        if _is_path_param(name) and isinstance(value, str) and value and not Path(value).is_absolute():
            base = cwd if name in spec.overrides else REPO_ROOT
            params[name] = str((base / value).resolve())
    return params


def model_billions(model_name: str) -> float | None:
    """Rough parameter count from a hub name such as 'unsloth/Qwen2.5-7B' (None if no size in it)."""
    match = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model_name.split("/")[-1])
    return float(match.group(1)) if match else None


def load_dataset(params: dict):
    """The pairs the notebooks will read, loaded once here; raises DataError with the fix."""
    from ai2human.data.pairs import load_pairs

    return load_pairs(params["dataset_path"], params.get("human_column", "human"), params.get("ai_column", "LLM"))[0]


def check_run(spec: RunSpec, params: dict, force: bool = False):
    """Checks that need the resolved paths and the hardware, before any folder is created.

    Returns the loaded pairs (None when the run reads no dataset), so the caller can record them.
    """
    dataset = params.get("dataset_path")
    pairs = None
    if dataset:
        if not Path(dataset).is_file():
            problem = f"dataset_path: {dataset} does not exist; give a CSV, JSONL or Parquet file (--set dataset_path=...)"
            raise ParamsError(f"{spec.params_file}: 1 problem(s):\n{format_problems([problem])}")
        pairs = load_dataset(params)
    if force or not (MODEL_NOTEBOOKS & set(spec.notebooks)):
        return pairs
    # The pairs stage generates with the styler; fine-tuning and evaluation run the base model.
    models = {str(params.get("styler_model", "")) if short == "pairs" else str(params.get("model_name", ""))
              for short in MODEL_NOTEBOOKS & set(spec.notebooks)}
    models = sorted(m for m in models if m and not is_local_model(m))
    if not models:
        return pairs
    import torch

    if torch.cuda.is_available():
        return pairs
    if params.get("backend") == "unsloth":
        raise HardwareError("backend 'unsloth' needs an NVIDIA GPU and none is visible; use --kaggle, a GPU machine, or backend: hf")
    for model in models:
        size = model_billions(model)
        if size is not None and size >= 1:
            raise HardwareError(
                f"{model} (~{size:g}B parameters) would take days to run on this CPU-only machine; "
                "run it on Kaggle (--kaggle) or a GPU machine, or pass --force to run here anyway"
            )
    return pairs
