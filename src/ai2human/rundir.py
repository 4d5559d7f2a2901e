"""The run folder ``runs/<run_name>/``: the one place that knows its layout.

Every file name a run writes is a constant here; notebooks, the runner, the Kaggle code and the
chat app import them instead of spelling them out. ``prepare_run_dir`` is where a notebook's
artifacts go, and ``Manifest`` is ``manifest.json`` for local and Kaggle runs alike.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

# ---------------------------------------------------------------- file names inside a run folder
MANIFEST = "manifest.json"
EDA_SUMMARY = "eda_summary.json"
PAIRS = "pairs.parquet"  # the training pairs the pairs stage writes when pairs_source is not dataset (ai2human.pairs.store)
CHECKPOINTS = "checkpoints"
TRAIN_LOG = "train_log.jsonl"
TRAIN_METRICS = "train_metrics.json"
LOSS_CURVES = "loss_curves.png"
PREVIEW = "preview_rewrites.jsonl"
ADAPTER = "adapter"
EVAL_METRICS = "eval_metrics.json"
EVAL_OUTPUTS = "eval_outputs.jsonl"
DETECTOR = "detector.joblib"
YARDSTICK = "yardstick.joblib"  # the evaluation's fitted detectors, fluency model and calibration (ai2human.score)
DPO_ADAPTER = "dpo_adapter"  # the preference stage's adapter, trained from ADAPTER with DPO (ai2human.prefer)
DPO_METRICS = "dpo_metrics.json"  # its pair statistics, reward per step and before/after scores
DPO_PAIRS = "dpo_pairs.jsonl"  # every chosen/rejected pair it trained on, with both scores
REWARD = "reward.joblib"  # the reward the preference stage optimised (ai2human.prefer.reward), re-scored by the evaluation
DISTRIBUTED = "distributed"  # the data-parallel job's settings and per-rank results
KAGGLE = "kaggle"  # kernels pushed for this run and their fetched outputs (runner.kaggle)
LOCK = "runner.lock"  # held by the runner executing into the folder (runner.lock)
SPLIT = "split.json"  # the dataset's train/validation row numbers, checked on every later invocation
KERNEL_LOG = "kernel.log"  # the notebook kernels' own stderr (their log lines), kept off the console

# Kaggle keeps only this folder's files as a kernel's output; "" run_dir means it there.
KAGGLE_WORKING = Path("/kaggle/working")
KAGGLE_INPUT = Path("/kaggle/input")
INTERACTIVE = Path("runs/interactive")  # "" run_dir anywhere else (a notebook opened by hand)


def on_kaggle() -> bool:
    """True inside a Kaggle kernel (Kaggle sets KAGGLE_KERNEL_RUN_TYPE in every session)."""
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE"))


def repository() -> Path | None:
    """The checkout this package runs from (an editable install), or None (a wheel, a Kaggle kernel)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def default_run_dir(cwd: Path | None = None) -> Path:
    """Where "" run_dir points: /kaggle/working on Kaggle; else runs/interactive of the checkout when
    the notebook was started anywhere inside it (a notebook UI starts kernels in notebooks/, and
    notebooks/runs/ would be neither the usual place nor git-ignored), else of the working directory."""
    if on_kaggle():
        return KAGGLE_WORKING
    cwd = (cwd or Path.cwd()).resolve()
    root = repository()
    if root is not None and cwd.is_relative_to(root):
        return root / INTERACTIVE
    return cwd / INTERACTIVE


def prepare_run_dir(run_dir: str | Path = "") -> Path:
    """The folder a notebook writes its artifacts to, created if needed.

    The runner always passes an absolute path. Opened by hand, "" means /kaggle/working on Kaggle
    (the only folder whose files survive as the kernel's output) and runs/interactive elsewhere
    (see ``default_run_dir``).
    """
    path = Path(run_dir or default_run_dir()).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- manifest.json

def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ManifestError(ValueError):
    """manifest.json exists but cannot be read (a cut-off write, a hand edit)."""


class Manifest:
    """``manifest.json``: what ran, with what, on what, and how each notebook ended."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = Path(path), data

    @classmethod
    def load(cls, run_dir: str | Path) -> "Manifest | None":
        """The run's manifest; None when there is none. An unreadable one raises ``ManifestError``."""
        path = Path(run_dir) / MANIFEST
        if not path.exists():
            return None
        if not path.is_file():  # a folder or a device where the file should be: not ours to remove
            raise ManifestError(f"{path} is not a file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ManifestError(f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("notebooks"), dict):
            raise ManifestError(f"{path} is not a run manifest (no 'notebooks' table)")
        return cls(path, data)

    @classmethod
    def new(cls, run_dir: str | Path, *, run_name: str, notebooks: dict[str, str], params: dict,
            executor: str = "local", **fields) -> "Manifest":
        """A fresh manifest for a local or a Kaggle run; ``fields`` adds the caller's provenance
        (params file, overrides, git state, versions, hardware)."""
        data = {
            "run_name": run_name,
            "executor": executor,
            "status": "running",
            "created": now(),
            "updated": now(),
            **fields,
            "params": params,
            "notebooks": {short: {"file": file, "status": "pending"} for short, file in notebooks.items()},
            "invocations": [],
        }
        return cls(Path(run_dir) / MANIFEST, data)

    def save(self) -> None:
        """Written to a temporary file and renamed, so a kill mid-write never leaves half a manifest."""
        self.data["updated"] = now()
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def notebook(self, short: str) -> dict:
        return self.data["notebooks"][short]

    @property
    def status(self) -> str:
        return str(self.data.get("status", ""))
