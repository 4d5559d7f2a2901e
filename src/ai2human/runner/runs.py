"""Run folders: where a notebook writes, and how the runner executes notebooks into them.

A run is a folder ``runs/<run_name>/`` holding the executed notebooks (the reports), their HTML,
the artifacts each notebook hands the next, and ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ai2human.errors import HardwareError, ParamsError
from ai2human.rundir import MANIFEST, Manifest, now as _now
from ai2human.runner.params import DEPENDS_ON, NOTEBOOK_DIR, NOTEBOOKS, REPO_ROOT, RunSpec
from ai2human.models.tiny import is_local_model


# ---------------------------------------------------------------- executing a run (the runner)

# Versions worth knowing when reading an old run.
KEY_PACKAGES = (
    "torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth",
    "papermill", "scikit-learn", "sentence-transformers", "pandas", "numpy", "ai2human",
)
# Notebooks that load the model for training or generation and so need a GPU for a real model.
MODEL_NOTEBOOKS = {"finetune", "evaluate"}


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


def _model_billions(model_name: str) -> float | None:
    """Rough parameter count from a hub name such as 'unsloth/Qwen2.5-7B' (None if no size in it)."""
    match = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model_name.split("/")[-1])
    return float(match.group(1)) if match else None


def check_run(spec: RunSpec, params: dict, force: bool = False) -> None:
    """Checks that need the resolved paths and the hardware, before any folder is created."""
    problems = []
    dataset = params.get("dataset_path")
    if dataset and not Path(dataset).is_file():
        problems.append(f"dataset_path: {dataset} does not exist; give a CSV, JSONL or Parquet file (--set dataset_path=...)")
    if problems:
        raise ParamsError(f"{spec.params_file}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    if force or not (MODEL_NOTEBOOKS & set(spec.notebooks)):
        return
    model = str(params.get("model_name", ""))
    if is_local_model(model):
        return
    import torch

    if torch.cuda.is_available():
        return
    if params.get("backend") == "unsloth":
        raise HardwareError("backend 'unsloth' needs an NVIDIA GPU and none is visible; use --kaggle, a GPU machine, or backend: hf")
    size = _model_billions(model)
    if size is not None and size >= 1:
        raise HardwareError(
            f"{model} (~{size:g}B parameters) would take days to train on this CPU-only machine; "
            "run it on Kaggle (--kaggle) or a GPU machine, or pass --force to run here anyway"
        )


def _git_state() -> dict:
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


def _package_versions() -> dict:
    from importlib import metadata

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _hardware() -> dict:
    from ai2human.models.hardware import detect_hardware

    try:
        return detect_hardware().to_dict()
    except Exception as exc:  # a broken CUDA driver must not stop the run from being recorded
        return {"error": f"{type(exc).__name__}: {exc}"}


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
        "git": _git_state(),
    }
    if executor == "local":  # a Kaggle kernel records its own machine in its output
        provenance.update(python=sys.version.split()[0], packages=_package_versions(), hardware=_hardware())
    notebooks = {short: NOTEBOOKS[short] for short in spec.notebooks} if executor == "local" else {}
    return Manifest.new(run_dir, run_name=spec.run_name, notebooks=notebooks, params=params, executor=executor, **provenance)


def _changed_params(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def open_run(spec: RunSpec, params: dict, out_root: Path, fresh: bool = False) -> Manifest:
    """Create the run folder, or reopen it to resume; refuses to mix parameters in one folder."""
    run_dir = out_root / spec.run_name
    manifest = Manifest.load(run_dir) if run_dir.is_dir() else None
    if run_dir.is_dir() and manifest is None and any(run_dir.iterdir()):
        raise ParamsError(f"{run_dir} exists and is not a run folder (no {MANIFEST}); choose another run_name or --out")
    if manifest is not None and fresh:
        shutil.rmtree(run_dir)
        manifest = None
    if manifest is not None:
        changed = _changed_params(manifest.data["params"], params)
        if changed:
            raise ParamsError(
                f"{run_dir} was run with other parameters ({'; '.join(changed[:5])}); "
                "pass --fresh to start it over, or set another run_name"
            )
        for short in spec.notebooks:  # a notebook added by --only on a later call
            manifest.data["notebooks"].setdefault(short, {"file": NOTEBOOKS[short], "status": "pending"})
        return manifest
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(spec, params, run_dir)
    manifest.save()
    return manifest


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
    return {
        "cell_index": getattr(exc, "cell_index", None),
        "execution_count": getattr(exc, "exec_count", None),
        "cell_first_line": source[0] if source else "",
        "exception": getattr(exc, "ename", type(exc).__name__),
        "message": str(getattr(exc, "evalue", exc)).strip().splitlines()[0] if str(getattr(exc, "evalue", exc)).strip() else "",
    }


def _peak_rss_mib() -> dict:
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

    files = [p for p in run_dir.rglob("*") if p.is_file()]
    return [f"{f.path}:{f.line}: {f.kind}" for f in scan_paths(files)]


def execute_run(
    spec: RunSpec,
    out_root: Path,
    fresh: bool = False,
    force: bool = False,
    stream: bool = False,
    notebook_dir: Path = NOTEBOOK_DIR,
    kernel_name: str = "python3",
    log=print,
) -> int:
    """Execute the run's notebooks into ``out_root/<run_name>``; 0 if all completed, else 1."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    params = resolve_paths(spec)
    check_run(spec, params, force)
    manifest = open_run(spec, params, Path(out_root).resolve(), fresh)
    run_dir = manifest.path.parent
    manifest.data["status"] = "running"
    invocation = {"started": _now(), "notebooks": list(spec.notebooks)}
    manifest.data["invocations"].append(invocation)
    manifest.save()
    log(f"run {spec.run_name}: {run_dir}")

    failed: set[str] = set()
    for short in spec.notebooks:
        entry = manifest.notebook(short)
        output = run_dir / NOTEBOOKS[short]
        if entry.get("status") == "completed" and output.is_file():
            log(f"  {short}: completed in an earlier invocation, skipped (--fresh to redo)")
            continue
        blocked = [
            d for d in DEPENDS_ON[short]
            if d in failed or manifest.data["notebooks"].get(d, {}).get("status", "completed") != "completed"
        ]
        if blocked:
            entry.update(status="skipped", reason=f"{', '.join(blocked)} did not complete")
            failed.add(short)
            manifest.save()
            log(f"  {short}: skipped because {', '.join(blocked)} did not complete")
            continue
        nb_params = {k: v for k, v in params.items() if k in spec.notebook_params(short)}
        nb_params["run_dir"] = str(run_dir)
        entry.update(status="running", started=_now(), error=None)
        entry.pop("reason", None)
        manifest.save()
        log(f"  {short}: executing {NOTEBOOKS[short]}")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(notebook_dir / NOTEBOOKS[short]),
                str(output),
                parameters=nb_params,
                kernel_name=kernel_name,
                cwd=str(run_dir),
                progress_bar=not stream,
                log_output=stream,
                report_mode=False,
            )
            entry["status"] = "completed"
        except PapermillExecutionError as exc:
            entry.update(status="failed", error=describe_failure(exc))
            failed.add(short)
            err = entry["error"]
            log(
                f"  {short}: FAILED in cell {err['cell_index']} (`{err['cell_first_line']}`): "
                f"{err['exception']}: {err['message']}\n    partial notebook kept: {output}"
            )
        except KeyboardInterrupt:
            entry.update(status="interrupted", finished=_now(), wall_s=round(time.perf_counter() - t0, 1))
            manifest.data["status"] = "interrupted"
            manifest.save()
            log(f"  {short}: interrupted; the next invocation resumes here")
            return 130
        entry.update(finished=_now(), wall_s=round(time.perf_counter() - t0, 1))
        if output.is_file():
            entry["html"] = render_html(output).name
        manifest.save()
        if entry["status"] == "completed":
            log(f"  {short}: completed in {entry['wall_s']:.1f} s -> {output.name}, {entry['html']}")

    invocation["finished"] = _now()
    manifest.data["peak_rss_mib"] = _peak_rss_mib()
    leaks = scan_run_folder(run_dir)
    if leaks:
        manifest.data["status"] = "credentials_found"
        manifest.data["credentials_found"] = leaks
        manifest.save()
        log("  credential-like strings found in the run folder; the run is not declared complete:\n    " + "\n    ".join(leaks))
        return 1
    done = all(manifest.notebook(s).get("status") == "completed" for s in manifest.data["notebooks"])
    manifest.data["status"] = "completed" if done and not failed else "failed"
    manifest.save()
    total = sum(manifest.notebook(s).get("wall_s", 0) for s in spec.notebooks)
    log(f"run {spec.run_name}: {manifest.data['status']} ({total:.0f} s of notebooks); manifest: {manifest.path}")
    return 0 if manifest.data["status"] == "completed" else 1
