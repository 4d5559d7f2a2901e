"""What the Kaggle setup cell (kaggle/setup_cell.py) does once the package is installed.

The cell itself must be self-contained up to ``pip install`` (nothing of ours is importable before
it); everything after that lives here, so each notebook's first cell stays short: Kaggle Secrets
into the environment, earlier kernels' outputs (an adapter, the newest complete checkpoint) into
/kaggle/working, and a ``dataset_path`` that is not there looked for among the attached data sets.
Standard library only: it runs before the notebook's own imports.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".pq")
CHECKPOINT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors")


def finish(config: dict, names: dict, *, root: Path, code: Path | None, spec: str) -> None:
    """``config`` is the cell's ``AI2HUMAN_KAGGLE`` (filled by a push, empty when opened by hand),
    ``names`` the notebook's globals, ``code`` the attached code data set, ``spec`` what was installed."""
    inputs, working = root / "input", root / "working"
    found = read_secrets()
    working.mkdir(parents=True, exist_ok=True)
    notes = bring_outputs(config, inputs, working)
    watch_inputs(names, root, code)

    from importlib.metadata import version

    build = config.get("build")
    print(f"ai2human {version('ai2human')} installed from {spec}" + (f" (build {build})" if build else ""))
    print(f"Kaggle Secrets: {', '.join(found) or 'none attached'}; W&B {os.environ.get('WANDB_MODE', 'online')}")
    for note in notes:
        print(note)


def mounted(inputs: Path, slug: str) -> Path | None:
    """/kaggle/input/<slug>, or one to three levels deeper should Kaggle nest its mounts.

    The setup cell has the same lookup: it must find the code data set before anything of ours is
    installed."""
    for pattern in (slug, f"*/{slug}", f"*/*/{slug}", f"*/*/*/{slug}"):
        found = sorted(p for p in inputs.glob(pattern) if p.is_dir())
        if found:
            return found[0]
    return None


def read_secrets() -> list[str]:
    """W&B and Hugging Face keys from Kaggle Secrets (Add-ons > Secrets), never from files; the
    names found. Without a W&B key, W&B runs offline (kept in the output; `wandb sync` uploads it)."""
    found = []
    try:
        from kaggle_secrets import UserSecretsClient

        secrets = UserSecretsClient()
    except ImportError:
        secrets = None
    for name in ("WANDB_API_KEY", "HF_TOKEN"):
        if secrets is not None and not os.environ.get(name):
            try:
                os.environ[name] = secrets.get_secret(name)
                found.append(name)
            except Exception:  # not attached to this notebook
                pass
    if not os.environ.get("WANDB_API_KEY"):
        os.environ["WANDB_MODE"] = "offline"
    return found


def complete(checkpoint: Path) -> bool:
    """A checkpoint folder the trainer finished: it writes trainer_state.json last."""
    try:
        int(checkpoint.name.rsplit("-", 1)[1])
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (IndexError, ValueError, OSError):
        return False
    return any((checkpoint / w).is_file() for w in CHECKPOINT_WEIGHTS)


def bring_outputs(config: dict, inputs: Path, working: Path) -> list[str]:
    """Earlier kernels' outputs into ``working``: an evaluation reads the fine-tuning's adapter from
    run_dir, and a fine-tuning session resumes from the newest complete checkpoint of its last one.
    Nothing already in ``working`` is replaced. Returns a note per thing copied."""
    notes: list[str] = []

    def resume_from(source: Path) -> None:
        done = [c for c in source.glob("checkpoints/checkpoint-*") if complete(c)]
        if done and not any(complete(c) for c in working.glob("checkpoints/checkpoint-*")):
            newest = max(done, key=lambda c: int(c.name.rsplit("-", 1)[1]))
            shutil.copytree(newest, working / "checkpoints" / newest.name)  # a copy: training rotates it
            notes.append(f"ai2human: resume checkpoint {newest.name} (step {newest.name.rsplit('-', 1)[1]}) "
                         f"copied from {source}")

    def copy_outputs(source: Path) -> None:
        for entry in sorted(source.iterdir()):
            target = working / entry.name
            if entry.name in ("checkpoints",) or entry.name.startswith("__") or entry.suffix == ".log":
                continue
            if not target.exists():
                (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target)
                notes.append(f"ai2human: {entry.name} copied from {source}")

    if "kernel_sources" in config:  # a push: the runner says which source is which
        for slug in config["kernel_sources"]:
            source = mounted(inputs, slug)
            if source is None:
                raise RuntimeError(f"The output of {slug} is not attached; push that notebook first.")
            copy_outputs(source)
        if config.get("resume_from"):
            source = mounted(inputs, config["resume_from"])
            if source is None:
                raise RuntimeError(f"The earlier output of {config['resume_from']} is not attached.")
            resume_from(source)
    elif inputs.is_dir():  # opened by hand: any attached notebook output that holds results
        for source in sorted(p for p in inputs.iterdir() if (p / "adapter").is_dir() or (p / "checkpoints").is_dir()):
            copy_outputs(source)
            resume_from(source)
    return notes


def watch_inputs(names: dict, root: Path, code: Path | None) -> None:
    """After each cell, a run_dir under a moved /kaggle (the tests) is moved with it, and a
    dataset_path that is not here is looked for among the attached data sets (the parameters cells
    run after this one, so it cannot be done once, now)."""
    inputs = root / "input"
    outputs = {p.parent for marker in ("__notebook__.ipynb", "adapter", "checkpoints") for p in inputs.glob(f"*/{marker}")}
    data_files = [p for depth in ("*/*", "*/*/*", "*/*/*/*") for p in inputs.glob(depth)
                  if p.suffix.lower() in DATA_SUFFIXES and p.is_file() and not (code and code in p.parents)
                  and not any(o in p.parents for o in outputs)]
    told = set()

    def locate(name: str) -> None:
        value = names.get(name)
        if not isinstance(value, str) or not value or Path(value).exists():
            return
        if value.startswith("/kaggle/") and root != Path("/kaggle"):  # the tests' stand-in for /kaggle
            names[name] = value = str(root) + value[len("/kaggle"):]
        if name == "run_dir" or Path(value).exists():
            return
        same = [p for p in data_files if p.name == Path(value).name]
        choice = same[0] if same else data_files[0] if len(data_files) == 1 else None
        if choice is not None:
            names[name] = str(choice)
            print(f"ai2human: {name} {value!r} is not here; using the attached {choice}")
        elif value not in told:
            told.add(value)
            listed = ", ".join(str(p) for p in data_files) or "none"
            print(f"ai2human: {name} {value!r} is not here; attach your data set (Add Input) and set "
                  f"{name} in the parameters cell. Data files attached: {listed}")

    def find_inputs(*_) -> None:
        for name in ("run_dir", "dataset_path"):
            locate(name)

    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.events.register("post_run_cell", find_inputs)
    find_inputs()
