"""The kernels of a push: one folder per notebook, ``runs/<run>/kaggle/<notebook>/``, holding the
rendered notebook and its ``kernel-metadata.json``, and the checks Kaggle would otherwise make
after the upload. No network here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ai2human import rundir
from ai2human.errors import ParamsError
from ai2human.runner.kaggle.datasets import KAGGLE_INPUT, LICENSES, DataSet
from ai2human.runner.kaggle.names import REF, SLUG, kernel_ref, kernel_title, slugify
from ai2human.runner.kaggle.setup_cell import with_setup_cell
from ai2human.runner.kaggle.wheel import TEMPLATES, CodeBuild
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, RunSpec, dependencies
from ai2human.runner.precheck import MODEL_NOTEBOOKS, resolve_paths

KAGGLE_WORKING = str(rundir.KAGGLE_WORKING)
SECRETS = ("WANDB_API_KEY", "HF_TOKEN")  # Kaggle Secrets the setup cell reads when attached
DEFAULT_ACCELERATOR = "NvidiaTeslaT4"
# machine_shape values for a GPU notebook. The client passes the name through unchecked (its enum
# is not in kagglesdk); these are the ones Kaggle documents for `kernels push --accelerator`.
ACCELERATORS = ["NvidiaTeslaT4", "NvidiaTeslaT4Highmem", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100",
                "NvidiaH100", "NvidiaRtxPro6000"]
REFUSED_ACCELERATORS = {
    "nvidiateslap100": "Kaggle retired the P100 (sessions silently run on a T4 instead), and current "
                       "PyTorch, bitsandbytes and Unsloth builds no longer support its CUDA capability 6.0",
    "tpuv38": "a TPU cannot run Unsloth or bitsandbytes, which need an NVIDIA GPU",
    "tpu1vmv38": "a TPU cannot run Unsloth or bitsandbytes, which need an NVIDIA GPU",
    "tpuv5e8": "a TPU cannot run Unsloth or bitsandbytes, which need an NVIDIA GPU",
    "tpuv6e8": "a TPU cannot run Unsloth or bitsandbytes, which need an NVIDIA GPU",
}


@dataclass
class KernelPlan:
    run_name: str
    short: str
    folder: Path  # runs/<run>/kaggle/<notebook>/
    ref: str
    metadata: dict
    depends_on: list[str] = field(default_factory=list)  # notebooks of this push it waits for

    @property
    def notebook(self) -> str:
        return NOTEBOOKS[self.short]


def accelerator(meta: dict) -> str:
    """The run's ``kaggle_accelerator`` in Kaggle's spelling, or ParamsError saying why not."""
    wanted = str(meta.get("kaggle_accelerator") or DEFAULT_ACCELERATOR)
    reason = REFUSED_ACCELERATORS.get(wanted.lower())
    if reason:
        raise ParamsError(f"kaggle_accelerator: {wanted} is refused: {reason}; use {DEFAULT_ACCELERATOR} (two T4s), "
                          "NvidiaL4 or NvidiaTeslaA100")
    for name in ACCELERATORS:
        if name.lower() == wanted.lower():
            return name
    raise ParamsError(f"kaggle_accelerator: unknown {wanted!r}; one of {', '.join(ACCELERATORS)}")


def check_spec(spec: RunSpec, params: dict) -> list[str]:
    """Problems that stop this run from being pushed, found before anything is built."""
    problems = []
    try:
        accelerator(spec.meta)
    except ParamsError as exc:
        problems.append(str(exc))
    license_name = spec.meta.get("kaggle_data_license") or "other"
    if license_name not in LICENSES:
        problems.append(f"kaggle_data_license: {license_name!r} is not a Kaggle licence name (e.g. CC0-1.0, CC-BY-4.0, other)")
    ref = spec.meta.get("kaggle_dataset") or ""
    if ref and not (REF.match(ref) and 3 <= len(ref.split("/")[1]) <= 50):
        problems.append(f"kaggle_dataset: {ref!r} is not OWNER/SLUG (slug: 3-50 lowercase letters, digits, dashes)")
    for short in spec.notebooks:
        title = kernel_title(spec.run_name, short)
        if len(title) > 50:
            problems.append(f"run_name: {spec.run_name!r} makes the Kaggle title {title!r} longer than Kaggle's 50 "
                            "characters; set a shorter run_name")
    dataset = str(params.get("dataset_path") or "")
    if dataset and not dataset.startswith(KAGGLE_INPUT + "/") and not Path(dataset).is_file():
        problems.append(f"dataset_path: {dataset} does not exist")
    for name, value in params.items():
        if (name.endswith(("_path", "_dir")) and name not in ("run_dir", "dataset_path") and isinstance(value, str)
                and value and not value.startswith(KAGGLE_INPUT + "/")):
            problems.append(f"{name}: {value} is a path on this machine, which a Kaggle kernel cannot read; "
                            "give a /kaggle/input/... path or leave it empty")
    return problems


def render_notebook(source: Path, target: Path, parameters: dict, setup: dict) -> None:
    """papermill's prepare-only render (parameters injected, nothing run), with the setup cell as
    the first code cell: the notebook's own, filled with ``setup``, or inserted when it has none."""
    import nbformat
    import papermill as pm

    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    # papermill re-parses the parameters cell and warns about its comments and "unknown"
    # parameters; params.py has already validated every name and value, so hush it here.
    papermill_log.setLevel(logging.ERROR)
    try:
        pm.execute_notebook(str(source), str(target), parameters=parameters, prepare_only=True,
                            kernel_name="python3", language="python", progress_bar=False)
    finally:
        papermill_log.setLevel(level)
    nb = nbformat.read(target, as_version=4)
    with_setup_cell(nb, setup)
    papermill_meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # local absolute paths mean nothing on Kaggle
        if key in papermill_meta:
            papermill_meta[key] = target.name
    nbformat.write(nb, target)


def kernel_setup(short: str, code: CodeBuild, kernel_sources: list[str], resume_from: str = "") -> dict:
    """What the setup cell of one kernel needs to know (its ``AI2HUMAN_KAGGLE``)."""
    return {
        "build": code.build,
        "code_dataset": code.ref,
        "code_slug": code.ref.split("/", 1)[1],
        "wheel": code.wheel,
        "extras": ["gpu"] if short in MODEL_NOTEBOOKS else [],  # pyproject's pinned GPU stack
        "kernel_sources": [ref.split("/", 1)[1] for ref in kernel_sources],
        "resume_from": resume_from.split("/", 1)[-1] if resume_from else "",
    }


def plan_kernels(spec: RunSpec, out_root: Path, username: str, code: CodeBuild, data: DataSet | None,
                 notebook_dir: Path = NOTEBOOK_DIR, resume: dict[str, str] | None = None) -> list[KernelPlan]:
    """Render each selected notebook into ``runs/<run>/kaggle/<notebook>/`` with its metadata.

    ``resume`` maps a notebook to the kernel whose last output holds its checkpoints (its own):
    that output is attached, and the setup cell copies the newest complete checkpoint."""
    params = resolve_paths(spec)
    shape = accelerator(spec.meta)
    public = bool(spec.meta.get("kaggle_public", False))
    template = json.loads((TEMPLATES / "kernel-metadata.json").read_text(encoding="utf-8"))
    plans = []
    for short in spec.notebooks:
        title = kernel_title(spec.run_name, short)
        ref = kernel_ref(username, spec.run_name, short)
        deps = dependencies(short, spec.params, [*spec.meta.get("notebooks", []), *spec.notebooks])
        inputs = [kernel_ref(username, spec.run_name, d) for d in deps]
        resume_from = (resume or {}).get(short, "")
        nb_params = {k: v for k, v in params.items() if k in spec.notebook_params(short)}
        if "run_dir" in nb_params:
            nb_params["run_dir"] = KAGGLE_WORKING
        if "dataset_path" in nb_params and data is not None:
            nb_params["dataset_path"] = data.kaggle_path
        gpu = short in MODEL_NOTEBOOKS
        folder = out_root / spec.run_name / rundir.KAGGLE / Path(NOTEBOOKS[short]).stem
        folder.mkdir(parents=True, exist_ok=True)  # fetched outputs of earlier pushes stay beside it
        render_notebook(notebook_dir / NOTEBOOKS[short], folder / NOTEBOOKS[short], nb_params,
                        kernel_setup(short, code, inputs, resume_from))
        meta = dict(template)
        meta.update(
            id=ref,
            title=title,
            code_file=NOTEBOOKS[short],
            is_private=not public,
            enable_gpu=gpu,
            dataset_sources=[code.ref] + ([data.ref] if data else []),
            kernel_sources=inputs + ([resume_from] if resume_from and resume_from not in inputs else []),
        )
        if gpu:
            meta["machine_shape"] = shape
        (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        plans.append(KernelPlan(spec.run_name, short, folder, ref, meta, [d for d in deps if d in spec.notebooks]))
    return plans


def validate_metadata(meta: dict, folder: Path) -> list[str]:
    """Every kernel-metadata.json value the server would reject (or silently misread), as problems."""
    where = f"{folder / 'kernel-metadata.json'}"
    problems = []
    owner, _, slug = str(meta.get("id", "")).partition("/")
    if not owner or not SLUG.match(slug) or not 5 <= len(slug) <= 50:
        problems.append(f"id {meta.get('id')!r}: expected OWNER/SLUG with a 5-50 character slug")
    title = str(meta.get("title", ""))
    if not 5 <= len(title) <= 50:
        problems.append(f"title {title!r}: Kaggle needs 5-50 characters")
    elif slugify(title) != slug:
        problems.append(f"title {title!r} slugifies to {slugify(title)!r}, not the id's {slug!r}")
    code = folder / str(meta.get("code_file", ""))
    if not meta.get("code_file") or not code.is_file():
        problems.append(f"code_file {meta.get('code_file')!r}: no such file in {folder}")
    else:
        try:
            json.loads(code.read_text(encoding="utf-8"))["cells"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"code_file {code.name}: not a notebook")
    if meta.get("language") != "python" or meta.get("kernel_type") != "notebook":
        problems.append("language/kernel_type: expected python/notebook")
    for key in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            problems.append(f"{key}: expected true/false, got {meta.get(key)!r}")
    if meta.get("enable_tpu"):
        problems.append("enable_tpu: the notebooks need an NVIDIA GPU")
    shape = meta.get("machine_shape")
    if meta.get("enable_gpu") and shape not in ACCELERATORS:
        problems.append(f"machine_shape {shape!r}: one of {', '.join(ACCELERATORS)}")
    if not meta.get("enable_gpu") and shape:
        problems.append(f"machine_shape {shape!r} given without enable_gpu")
    for key in ("dataset_sources", "kernel_sources"):
        for ref in meta.get(key, []):
            if not REF.match(str(ref)) or len(ref.split("/")[1]) < (5 if key == "kernel_sources" else 3):
                problems.append(f"{key}: {ref!r} is not OWNER/SLUG")
    return [f"{where}: {p}" for p in problems]
