"""Run folders on the runner's side: opening one (new, resumed or started over) and what is kept in it.

A run is a folder ``runs/<run_name>/`` holding the executed notebooks (the reports), their HTML,
the artifacts each notebook hands the next, and ``manifest.json``. Executing the notebooks into
it is ``ai2human.runner.execute``; checks before anything exists are ``ai2human.runner.precheck``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ai2human.errors import ParamsError, UserError
from ai2human.rundir import LOCK, MANIFEST, SPLIT, Manifest, ManifestError
from ai2human.runner.params import NOTEBOOKS, RunSpec
from ai2human.runner.provenance import dataset_record, new_manifest, split_record

NEW_RUN_HELP = "set another run_name (--set run_name=NAME) to start a new run beside it, or pass --fresh to delete it and start over"


def _changed_params(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _clear(run_dir: Path) -> None:
    """Delete a run folder's contents but the lock this runner holds (``--fresh``)."""
    for child in run_dir.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _check_same_dataset(manifest: Manifest, params: dict, split: dict | None, run_dir: Path) -> None:
    """A resumed or later invocation must read the file the run started with, split the same way."""
    old, new = manifest.data.get("dataset"), dataset_record(params)
    split_file = run_dir / SPLIT
    if split and split_file.is_file():
        # The split decides what evaluation may score; a re-saved file with the same rows is fine.
        try:
            changed = json.loads(split_file.read_text(encoding="utf-8")).get("sha256") != split["sha256"]
        except (OSError, ValueError):
            changed = True
    else:
        changed = bool(old and new and old.get("sha256") != new["sha256"])
    manifest.data["dataset"] = new or old
    if changed:
        raise UserError(
            f"{run_dir}: the dataset {params.get('dataset_path')} changed since this run started (its SHA-256 or split "
            "differs), so evaluation could score rows the model was trained on; " + NEW_RUN_HELP
        )


def refuse_foreign(run_dir: Path) -> None:
    """Never write into (or delete) a folder that holds files but no manifest: it is not ours."""
    if run_dir.is_dir() and not (run_dir / MANIFEST).exists() and any(p.name != LOCK for p in run_dir.iterdir()):
        raise ParamsError(f"{run_dir} exists and is not a run folder (no {MANIFEST}); choose another run_name or --out")


def open_run(spec: RunSpec, params: dict, run_dir: Path, fresh: bool = False, pairs=None) -> Manifest:
    """Open the (locked) run folder: new, resumed, or started over with ``fresh``.

    Refuses to mix parameters or datasets in one folder, and never deletes a folder that is not a run.
    """
    try:
        manifest = Manifest.load(run_dir)
    except ManifestError as exc:
        if not fresh:
            raise UserError(f"{exc}; pass --fresh to start this run over (its results are deleted), "
                            "or restore the file, or set another run_name") from None
        manifest = None
    refuse_foreign(run_dir)
    if fresh:
        _clear(run_dir)  # whatever state it is in: --fresh must always recover
        manifest = None
    split = split_record(pairs, params)
    if manifest is not None:
        changed = _changed_params(manifest.data["params"], params)
        if changed:
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            raise ParamsError(f"{run_dir} was run with other parameters ({'; '.join(changed[:5])}{more}); {NEW_RUN_HELP}")
        _check_same_dataset(manifest, params, split, run_dir)
        for short in spec.notebooks:  # a notebook added by --only on a later call
            manifest.data["notebooks"].setdefault(short, {"file": NOTEBOOKS[short], "status": "pending"})
        return manifest
    manifest = new_manifest(spec, params, run_dir)
    if split:
        (run_dir / SPLIT).write_text(json.dumps(split) + "\n", encoding="utf-8")
        manifest.data["split_sha256"] = split["sha256"]
    manifest.save()
    return manifest


def missing_dependencies(manifest: Manifest, short: str, depends_on: list[str]) -> list[str]:
    """What ``short`` needs that this run folder lacks, in words (for ``--only finetune`` style calls)."""
    missing = []
    for dep in depends_on:
        entry = manifest.data["notebooks"].get(dep)
        if entry is None:
            missing.append(f"{dep} has not run in this folder (run it: --only {dep},{short}, or without --only)")
        elif entry.get("status") != "completed":
            missing.append(f"{dep} is {entry.get('status', 'pending')} (run it first: --only {dep})")
    return missing


def render_html(notebook_path: Path) -> Path:
    """The executed notebook as a self-contained HTML report beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook_path, as_version=4))
    out = notebook_path.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def describe_failure(exc) -> dict:
    """The failing cell from papermill's error, in a few words and lines."""
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    message = str(getattr(exc, "evalue", exc)).strip()
    return {
        "cell_index": getattr(exc, "cell_index", None),
        "execution_count": getattr(exc, "exec_count", None),
        "cell_first_line": source[0] if source else "",
        "exception": getattr(exc, "ename", type(exc).__name__),
        "message": message.splitlines()[0] if message else "",
    }


def peak_rss_mib() -> dict:
    import resource

    # Linux reports ru_maxrss in KiB. Kernels are this process's children, run one at a time, so
    # the run's peak is about runner + largest kernel.
    return {
        "runner": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "largest_kernel": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def scan_run_folder(run_dir: Path) -> list[str]:
    """Credential-like strings in any file of the run folder, as 'path:line: kind'."""
    from ai2human.runner.credentials import scan_paths

    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name != LOCK]
    return [str(f) for f in scan_paths(files)]
