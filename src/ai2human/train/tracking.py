"""Experiment tracking and secrets: W&B online when a key is available, offline otherwise.

Keys never come from parameters (they would be saved in the executed notebook and the manifest):
they come from the environment or, on Kaggle, from the notebook's attached secrets.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ai2human.rundir import on_kaggle


def get_secret(name: str) -> str:
    """``name`` from the environment, else from Kaggle Secrets when on Kaggle; "" if neither has it."""
    value = os.environ.get(name, "")
    if value or not on_kaggle():
        return value
    try:
        from kaggle_secrets import UserSecretsClient

        return UserSecretsClient().get_secret(name) or ""
    except Exception:  # the secret is not attached to this notebook, or the secrets service is down
        return ""


@dataclass
class Tracking:
    report_to: list[str] | str  # what TrainingArguments.report_to gets
    mode: str  # "off", "online" or "offline"
    message: str  # one line for the notebook


def setup_tracking(report_to: str, wandb_project: str, run_dir: str | Path) -> Tracking:
    """Prepare the trackers named in ``report_to`` ("wandb", "none", or a comma list of HF integrations).

    W&B runs online with a key (WANDB_API_KEY in the environment or a Kaggle secret of that name)
    and offline without one, writing under ``run_dir/wandb`` so the run can be uploaded later.
    """
    names = [n.strip().lower() for n in report_to.split(",") if n.strip()]
    if not names or names == ["none"]:
        return Tracking("none", "off", "tracking off (report_to = none); the log is in train_log.jsonl")
    if "none" in names:
        names.remove("none")
    if "wandb" not in names:
        return Tracking(names, "online", f"reporting to {', '.join(names)}")
    if importlib.util.find_spec("wandb") is None:
        names.remove("wandb")
        why = "wandb is not installed (pip install wandb): W&B off"
        return Tracking(names or "none", "online" if names else "off", why)
    run_dir = Path(run_dir)
    os.environ["WANDB_PROJECT"] = wandb_project
    os.environ["WANDB_DIR"] = str(run_dir)
    os.environ.setdefault("WANDB_LOG_MODEL", "false")  # checkpoints stay in run_dir, not uploaded
    sync = f"upload later with `wandb sync {run_dir / 'wandb'}/offline-run-*`"
    if os.environ.get("WANDB_MODE", "") in ("offline", "disabled"):
        mode = os.environ["WANDB_MODE"]
        return Tracking(names, mode.replace("disabled", "off"), f"W&B {mode} (WANDB_MODE is set in the environment)"
                        + (f"; {sync}" if mode == "offline" else ""))
    key = get_secret("WANDB_API_KEY")
    if key:
        os.environ["WANDB_API_KEY"] = key  # a Kaggle secret is not in the environment until set here
        os.environ["WANDB_MODE"] = "online"
        return Tracking(names, "online", f"W&B online, project {wandb_project!r}")
    os.environ["WANDB_MODE"] = "offline"
    return Tracking(
        names, "offline",
        f"W&B offline (no WANDB_API_KEY in the environment or Kaggle secrets): logging to {run_dir / 'wandb'}; {sync}",
    )


def finish_tracking(tracking: Tracking) -> None:
    """Close the W&B run so its last records are written (a notebook kernel would keep it open)."""
    if "wandb" in tracking.report_to and tracking.mode != "off":
        import wandb

        if wandb.run is not None:
            wandb.finish()
