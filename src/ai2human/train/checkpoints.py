"""Checkpoints: which one to resume from, whether one is intact, and training that resumes.

A Kaggle session cut off mid-save, or a disk that filled, leaves a checkpoint folder with a
truncated file. Resume must never be blocked by one: ``resume = auto`` checks every file a resume
reads (the trainer state, the adapter weights, the optimizer, scheduler and RNG states) and falls
back to the newest intact checkpoint, saying which were skipped and why.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import zipfile
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import CHECKPOINTS

WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors")


def _step(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def checkpoint_step(path: str | Path | None) -> int:
    """The global step of a ``checkpoint-N`` folder; 0 for None (a fresh start)."""
    return max(_step(Path(path)), 0) if path else 0


def safetensors_problem(path: Path) -> str:
    """Why a ``.safetensors`` file cannot be loaded whole, or "".

    The format is an 8-byte header length, a JSON header with each tensor's byte range, then the
    data: a file cut short is shorter than the largest range's end.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return f"{path.name} is truncated ({size} bytes)"
            (length,) = struct.unpack("<Q", raw)
            if length > size - 8:
                return f"{path.name} is truncated (header of {length} bytes in a {size}-byte file)"
            header = json.loads(f.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{path.name} is unreadable ({type(exc).__name__})"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        return f"{path.name} is truncated ({size} of {needed} bytes)"
    return ""


def torch_file_problem(path: Path) -> str:
    """Why a ``torch.save`` file (a zip archive) is damaged, or "": a cut-off archive loses the
    central directory at its end, so reading the directory is enough to find truncation."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path.name} is damaged ({str(exc) or type(exc).__name__})"
    return ""


def checkpoint_problem(path: str | Path) -> str:
    """Why ``path`` cannot be resumed from, or "" when it is intact.

    The trainer writes ``trainer_state.json`` last, so a folder without a readable one was cut off.
    """
    path = Path(path)
    if not path.is_dir():
        return "no such folder"
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "incomplete (no readable trainer_state.json)"
    weights = [path / name for name in WEIGHTS if (path / name).is_file()]
    if not weights:
        return "no adapter weights"
    for file in weights:
        problem = safetensors_problem(file) if file.suffix == ".safetensors" else torch_file_problem(file)
        if problem:
            return problem
    for file in sorted([*path.glob("*.pt"), *path.glob("*.pth")]):
        problem = torch_file_problem(file)
        if problem:
            return problem
    return ""


def is_complete_checkpoint(path: str | Path) -> bool:
    return checkpoint_problem(path) == ""


def _checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / CHECKPOINTS
    return sorted((p for p in folder.glob("checkpoint-*") if _step(p) >= 0), key=_step) if folder.is_dir() else []


def newest_intact_checkpoint(run_dir: str | Path) -> str | None:
    intact = [p for p in _checkpoints(Path(run_dir)) if not checkpoint_problem(p)]
    return str(intact[-1]) if intact else None


def find_checkpoint(run_dir: str | Path, resume: str = "auto") -> tuple[str | None, str]:
    """The checkpoint to resume from and a sentence saying why.

    ``resume``: ``"auto"`` = the newest intact checkpoint in ``run_dir/checkpoints`` (none: start
    fresh); ``"never"`` = start fresh, deleting old checkpoints so a later ``auto`` cannot pick
    them up; anything else = a checkpoint folder (absolute, or relative to ``run_dir``).
    """
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINTS
    found = _checkpoints(run_dir)
    if resume == "never":
        if found:
            shutil.rmtree(folder)
            return None, f"resume = never: starting from scratch (deleted {len(found)} old checkpoint(s) in {folder})"
        return None, "resume = never: starting from scratch"
    if resume == "auto":
        problems = {p: checkpoint_problem(p) for p in found}
        intact = [p for p in found if not problems[p]]
        skipped = [f"{p.name}: {problems[p]}" for p in found if problems[p] and (not intact or _step(p) > _step(intact[-1]))]
        note = f" (skipped {'; '.join(skipped)})" if skipped else ""
        if not intact:
            return None, f"no intact checkpoint in {folder}: starting from scratch{note}"
        newest = intact[-1]
        return str(newest), f"resuming from {newest.name} (step {_step(newest)}){note}"
    path = Path(resume)
    path = path if path.is_absolute() else run_dir / path
    problem = checkpoint_problem(path)
    if problem:
        raise UserError(f"resume = {resume!r}: {path} is not an intact checkpoint ({problem}); "
                        "use 'auto', 'never' or a checkpoint-N folder")
    return str(path), f"resuming from {path}"


def _finished(checkpoint: str | Path, args) -> bool:
    """Whether ``checkpoint`` already is the end of the run ``args`` describes."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    step = state.get("global_step", 0)
    if args.max_steps > 0:
        return step >= args.max_steps
    return step >= state.get("max_steps", math.inf) and state.get("num_train_epochs") == args.num_train_epochs


def train(trainer, resume_from: str | None = None):
    """``trainer.train(resume_from_checkpoint=resume_from)``, except when that checkpoint already
    ends the run (a notebook re-run after training finished): then its adapter is loaded instead,
    since transformers would train one step past the end."""
    if resume_from and _finished(resume_from, trainer.args):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        from transformers.trainer_utils import TrainOutput

        set_peft_model_state_dict(trainer.model, load_file(str(Path(resume_from) / "adapter_model.safetensors")))
        return TrainOutput(checkpoint_step(resume_from), float("nan"), {"already_finished": True})
    return trainer.train(resume_from_checkpoint=resume_from)
