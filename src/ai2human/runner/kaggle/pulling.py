"""``--pull RUN``: bring edits made on Kaggle back. Each kernel's current source is downloaded and
stripped of outputs; changed parameters go into a new params file, code changes are shown as a
diff against ``notebooks/`` and written there only with ``--apply``, never over uncommitted work.
"""

from __future__ import annotations

import ast
import difflib
import subprocess
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import KAGGLE
from ai2human.runner.kaggle.api import Client
from ai2human.runner.kaggle.setup_cell import TAG as SETUP_TAG
from ai2human.runner.kaggle.tracking import pushed_manifest, rel
from ai2human.runner.params import NOTEBOOKS
from ai2human.runner.paramsfile import load_yaml

PULLED = "pulled"  # runs/<run>/kaggle/pulled/: the stripped sources and the new params file
# Set per push for Kaggle's machine, so an edit to them is no change to the run's settings.
KAGGLE_ONLY = {"run_dir", "dataset_path"}


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _injected(cell) -> bool:
    # papermill tags the cell; should Kaggle drop the tag, its first line still says what it is.
    return "injected-parameters" in _tags(cell) or (cell.cell_type == "code" and cell.source.startswith("# Parameters\n"))


def stripped(nb) -> None:
    """Outputs, execution counts and run-time metadata removed, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
    nb.metadata.pop("papermill", None)


def parameter_values(nb) -> dict:
    """What the parameters cell, then papermill's injected cell, set (``name = literal`` lines)."""
    values = {}
    for cell in [c for c in nb.cells if "parameters" in _tags(c)] + [c for c in nb.cells if _injected(c)]:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return values


def as_committed(pulled, committed):
    """The pulled notebook in the committed one's shape: no injected cell, the committed
    parameters and setup cells (parameters travel in params files), committed cells reused
    where unchanged so ids and metadata do not churn."""
    import nbformat

    mine = {(c.cell_type, c.source): c for c in committed.cells}
    params = next((c for c in committed.cells if "parameters" in _tags(c)), None)
    setup = next((c for c in committed.cells if SETUP_TAG in _tags(c)), None)
    cells = []
    for cell in pulled.cells:
        if _injected(cell) or "kaggle-setup" in _tags(cell):
            continue
        if "parameters" in _tags(cell):
            cell = params if params is not None else cell
        elif SETUP_TAG in _tags(cell):
            if setup is None:
                continue
            cell = setup
        elif (cell.cell_type, cell.source) in mine:
            cell = mine[(cell.cell_type, cell.source)]
        else:
            make = nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
            cell = make(cell.source, metadata={k: v for k, v in cell.metadata.items() if k == "tags"})
            if (committed.nbformat, committed.nbformat_minor) < (4, 5):
                cell.pop("id", None)
        cells.append(cell)
    out = nbformat.from_dict(dict(committed))
    out.cells = cells
    return out


def _as_text(nb) -> list[str]:
    lines = []
    for i, cell in enumerate(nb.cells, 1):
        lines.append(f"# ---- cell {i} ({cell.cell_type})\n")
        lines += [line + "\n" for line in cell.source.splitlines()]
    return lines


def _uncommitted(paths: list[Path], notebook_dir: Path) -> list[str]:
    """``git status --porcelain`` lines for these files; UserError when git cannot say."""
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--", *map(str, paths)], cwd=notebook_dir,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"--apply: cannot run git to check {notebook_dir} for uncommitted changes ({exc})") from None
    if proc.returncode != 0:
        raise UserError(f"--apply: cannot tell whether {notebook_dir} has uncommitted changes "
                        f"({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'git failed'}); "
                        "--apply writes only into a git work tree")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def _write_params(manifest, run: str, changes: dict, folder: Path) -> Path:
    import yaml

    data = manifest.data
    values = dict(load_yaml(data.get("params_file_text") or "") or {})
    values.update(data.get("overrides") or {})
    values.update({k: new for k, (_, new) in changes.items()})
    values["run_name"] = f"{run}-pulled"  # the run folder holds one set of parameters
    header = (f"# {data.get('params_file') or 'the run'} with the parameters edited on Kaggle in run {run}\n"
              f"# (written by `runner/run.py --pull {run}`); changed: "
              + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items()) + "\n")
    path = folder / f"{run}-pulled.yaml"
    path.write_text(header + yaml.safe_dump(values, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def pull(client: Client, out_root: Path, run: str, notebook_dir: Path, apply: bool = False, log=print) -> int:
    import nbformat

    manifest = pushed_manifest(out_root, run, "--pull")
    run_dir = manifest.path.parent
    folder = run_dir / KAGGLE / PULLED
    changes: dict[str, tuple] = {}
    rewritten: dict[Path, object] = {}
    for short, entry in manifest.data["notebooks"].items():
        if not entry.get("version"):
            log(f"{short}: never pushed; nothing to pull")
            continue
        name = NOTEBOOKS[short]
        got = client.pull_kernel(entry["kernel"], folder / Path(name).stem)
        pulled = nbformat.read(got, as_version=4)
        stripped(pulled)
        target = folder / Path(name).stem / name
        nbformat.write(pulled, target)
        if got != target:
            got.unlink(missing_ok=True)
        before = parameter_values(nbformat.read(run_dir / entry["folder"] / name, as_version=4))
        for key, value in parameter_values(pulled).items():
            if key not in KAGGLE_ONLY and before.get(key, value) != value:
                if key in changes and changes[key][1] != value:
                    log(f"warning: {key} was edited differently in two kernels; keeping {changes[key][1]!r}")
                    continue
                changes[key] = (before[key], value)
        committed = nbformat.read(notebook_dir / name, as_version=4)
        candidate = as_committed(pulled, committed)
        diff = list(difflib.unified_diff(_as_text(committed), _as_text(candidate), f"notebooks/{name}",
                                         f"{entry['kernel']} (pulled)"))
        if diff:
            log("".join(diff).rstrip("\n"))
            rewritten[notebook_dir / name] = candidate
        log(f"{short}: pulled {entry['kernel']} into {rel(target)}; "
            + (f"{sum(1 for c in candidate.cells if c not in committed.cells)} cell(s) differ from notebooks/{name}"
               if diff else f"its cells match notebooks/{name}"))
    if changes:
        path = _write_params(manifest, run, changes, folder)
        log("parameters edited on Kaggle: " + "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items()))
        log(f"  written to {rel(path)}; run them with: python runner/run.py {rel(path)} --kaggle")
    else:
        log("parameters: unchanged on Kaggle")
    if not rewritten:
        return 0
    if not apply:
        log(f"code changes not applied; pass --apply to write them into {rel(notebook_dir)}/")
        return 0
    dirty = _uncommitted(list(rewritten), notebook_dir)
    if dirty:
        raise UserError("--apply refused: uncommitted changes in " + ", ".join(line[3:] for line in dirty)
                        + "; commit or stash them first, then pull again")
    for path, nb in rewritten.items():
        nbformat.write(nb, path)
        log(f"applied: {rel(path)}")
    return 0
