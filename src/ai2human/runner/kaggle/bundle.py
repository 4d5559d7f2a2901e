"""What a Kaggle push uploads, built and checked locally: the package wheel, the data set, and
one folder per notebook (the rendered notebook and its ``kernel-metadata.json``).

Nothing here touches the network, so ``--dry-run`` does all of it. The kernels run exactly the
local code: the package is built as a wheel into a private data set, ``<you>/ai2human-code``,
with a ``build-<hash>.json`` marker; the notebook's Kaggle setup cell (``kaggle/bootstrap.py``,
inserted after the injected parameters) refuses to run if the attached version holds another build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ai2human.errors import ParamsError, UserError
from ai2human import rundir
from ai2human.runner.params import DEPENDS_ON, NOTEBOOK_DIR, NOTEBOOKS, REPO_ROOT, RunSpec
from ai2human.runner.runs import MODEL_NOTEBOOKS, resolve_paths

TEMPLATES = REPO_ROOT / "kaggle"
CODE_SLUG = "ai2human-code"
KAGGLE_INPUT = str(rundir.KAGGLE_INPUT)  # compared and joined as strings: these paths are Kaggle's, not ours
KAGGLE_WORKING = str(rundir.KAGGLE_WORKING)
SECRETS = ("WANDB_API_KEY", "HF_TOKEN")  # Kaggle Secrets the setup cell reads when attached
PLACEHOLDER_USER = "your-kaggle-username"  # the owner shown by a dry run without credentials
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
# Licence names Kaggle accepts in dataset-metadata.json (docs/datasets_metadata.md of kaggle-api).
LICENSES = {"CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
            "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0",
            "CC-BY-3.0-IGO", "US-Government-Works", "CC-BY-NC-SA-3.0-IGO", "CDLA-Permissive-1.0",
            "CDLA-Sharing-1.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0", "LGPL-3.0", "AGPL-3.0",
            "FDL-1.3", "EU-ODP-Legal-Notice", "apache-2.0", "GPL-3.0"}
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(text: str) -> str:
    """Kaggle's slug of a title, with the same library the official client uses."""
    from slugify import slugify as _slugify

    return _slugify(text)


# ---------------------------------------------------------------------------- the code data set


@dataclass
class CodeBuild:
    ref: str  # owner/ai2human-code
    build: str  # hash of everything that goes into the wheel
    folder: Path  # what is uploaded: the wheel, the build marker, dataset-metadata.json
    wheel: str
    marker: str


def package_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files the wheel is built from (and the build hash is taken over)."""
    files = [root / "pyproject.toml", root / "README.md", *sorted(root.glob("LICEN[CS]E*"))]
    package = root / "src" / "ai2human"
    files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return [f for f in files if f.is_file()]


def source_hash(root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for path in package_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _has_build_backend() -> bool:
    try:
        from importlib.metadata import version

        return int(version("setuptools").split(".")[0]) >= 77
    except Exception:  # not installed, or an unparsable version
        return False


def build_wheel(root: Path = REPO_ROOT) -> tuple[Path, str]:
    """The package's wheel for the current sources, built once per source hash and cached."""
    build = source_hash(root)
    cache = Path(os.environ.get("AI2HUMAN_CACHE", Path.home() / ".cache" / "ai2human")) / "kaggle-wheels" / build
    built = sorted(cache.glob("ai2human-*.whl"))
    if built:
        return built[0], build
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a copy of exactly the hashed files, so nothing else slips into the wheel and
        # the repository gets no build/ folder.
        src = Path(tmp) / "src-tree"
        for path in package_files(root):
            target = src / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        dist = Path(tmp) / "dist"
        # With the build backend already here (setuptools >= 77, as pyproject asks) the build is
        # offline; otherwise pip fetches it into an isolated build environment.
        offline = ["--no-build-isolation", "--no-index"] if _has_build_backend() else []
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--quiet", "--wheel-dir", str(dist), str(src)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise UserError(f"building the ai2human wheel failed (is `make setup` done?):\n{proc.stderr[-2000:]}")
        wheel = next(dist.glob("ai2human-*.whl"))
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, cache / wheel.name)
    return cache / wheel.name, build


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _dataset_metadata(ref: str, title: str, license_name: str, description: str) -> dict:
    meta = json.loads((TEMPLATES / "dataset-metadata.json").read_text(encoding="utf-8"))
    meta.update(id=ref, title=title, description=description, licenses=[{"name": license_name}])
    return {k: v for k, v in meta.items() if v != ""}  # an empty subtitle is an error, an absent one is not


def stage_code(out_root: Path, username: str) -> CodeBuild:
    """``<runs>/.kaggle-code/``: the wheel, ``build-<hash>.json`` and the data set's metadata."""
    wheel, build = build_wheel()
    folder = out_root / ".kaggle-code"
    marker = f"build-{build}.json"
    if not (folder / marker).is_file() or not (folder / wheel.name).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy2(wheel, folder / wheel.name)
        info = {"build": build, "wheel": wheel.name, "git_commit": _git_commit(),
                "files": [p.relative_to(REPO_ROOT).as_posix() for p in package_files()]}
        (folder / marker).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    ref = f"{username}/{CODE_SLUG}"
    meta = _dataset_metadata(ref, "ai2human code", "apache-2.0",
                             "The ai2human package as a wheel, uploaded by `runner/run.py --kaggle` so that "
                             "pushed notebooks run exactly the local code. Each version holds one build.")
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return CodeBuild(ref, build, folder, wheel.name, marker)


def gpu_requirements(root: Path = REPO_ROOT) -> list[str]:
    """The pinned GPU stack: pyproject's ``gpu`` extra."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the installed metadata says the same
        from importlib.metadata import requires

        return [r.split(";")[0].strip() for r in requires("ai2human") or [] if 'extra == "gpu"' in r]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project.get("optional-dependencies", {}).get("gpu", []))


# ---------------------------------------------------------------------------- the data set


@dataclass
class DataSet:
    ref: str  # owner/slug
    title: str
    local: Path | None  # the file to upload; None when dataset_path is already a Kaggle path
    kaggle_path: str  # what the notebooks read
    license: str

    @property
    def slug(self) -> str:
        return self.ref.split("/", 1)[1]


def plan_dataset(dataset_path: str, meta: dict, username: str) -> DataSet:
    """Where the run's data lives on Kaggle: ``kaggle_dataset`` or ``<you>/ai2human-<file stem>``."""
    license_name = meta.get("kaggle_data_license") or "other"
    ref = meta.get("kaggle_dataset") or ""
    if dataset_path.startswith(KAGGLE_INPUT + "/"):
        if not ref:
            raise ParamsError(f"dataset_path {dataset_path} is a Kaggle path: set kaggle_dataset: OWNER/SLUG to attach it")
        return DataSet(ref, "", None, dataset_path, license_name)
    local = Path(dataset_path)
    if not ref:
        ref = f"{username}/{slugify('ai2human ' + local.stem)[:50].strip('-')}"
    slug = ref.split("/", 1)[-1]
    return DataSet(ref, " ".join(slug.split("-")), local, f"{KAGGLE_INPUT}/{slug}/{local.name}", license_name)


def stage_dataset(data: DataSet, out_root: Path) -> Path:
    """``<runs>/.kaggle-data/<slug>/``: the data file and ``dataset-metadata.json``, ready to upload."""
    folder = out_root / ".kaggle-data" / data.slug
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        os.link(data.local, folder / data.local.name)
    except OSError:  # another file system
        shutil.copy2(data.local, folder / data.local.name)
    meta = _dataset_metadata(data.ref, data.title, data.license,
                             f"Paired human/AI texts ({data.local.name}) for ai2human, uploaded by `runner/run.py --upload-data`.")
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------- the kernels


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


def kernel_title(run_name: str, short: str) -> str:
    return f"ai2human {run_name} {short}"


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
                and value and not value.startswith("/kaggle/")):
            problems.append(f"{name}: {value} is a path on this machine, which a Kaggle kernel cannot read; "
                            "give a /kaggle/input/... path or leave it empty")
    return problems


def render_notebook(source: Path, target: Path, parameters: dict, setup: dict) -> None:
    """papermill's prepare-only render (parameters injected, nothing run) plus the Kaggle setup cell."""
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
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    at = next(i for i, t in enumerate(tags) if "injected-parameters" in t or "parameters" in t)
    at = max([i for i, t in enumerate(tags) if "injected-parameters" in t] or [at])
    text = (TEMPLATES / "bootstrap.py").read_text(encoding="utf-8")
    literal = "KAGGLE_SETUP = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in setup.items()) + "}"
    text, found = re.subn(r"^KAGGLE_SETUP = \{\}.*$", lambda _: literal, text, count=1, flags=re.M)
    if not found:
        raise RuntimeError(f"{TEMPLATES / 'bootstrap.py'} lacks its `KAGGLE_SETUP = {{}}` line")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(text, metadata={"tags": ["kaggle-setup"]}))
    papermill_meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # local absolute paths mean nothing on Kaggle
        if key in papermill_meta:
            papermill_meta[key] = target.name
    nbformat.write(nb, target)


def kernel_setup(short: str, code: CodeBuild, data: DataSet | None, kernel_sources: list[str]) -> dict:
    """What the Kaggle setup cell of one notebook needs to know (its ``KAGGLE_SETUP``)."""
    return {
        "build": code.build,
        "code_dataset": code.ref,
        "code_slug": code.ref.split("/", 1)[1],
        "wheel": code.wheel,
        "build_marker": code.marker,
        "pip": gpu_requirements() if short in MODEL_NOTEBOOKS else [],
        "secrets": list(SECRETS),
        "data_slug": data.slug if data else "",
        "kernel_sources": [ref.split("/", 1)[1] for ref in kernel_sources],
    }


def plan_kernels(spec: RunSpec, out_root: Path, username: str, code: CodeBuild, data: DataSet | None,
                 notebook_dir: Path = NOTEBOOK_DIR) -> list[KernelPlan]:
    """Render each selected notebook into ``runs/<run>/kaggle/<notebook>/`` with its metadata."""
    params = resolve_paths(spec)
    shape = accelerator(spec.meta)
    public = bool(spec.meta.get("kaggle_public", False))
    template = json.loads((TEMPLATES / "kernel-metadata.json").read_text(encoding="utf-8"))
    plans = []
    for short in spec.notebooks:
        title = kernel_title(spec.run_name, short)
        ref = f"{username}/{slugify(title)}"
        deps = DEPENDS_ON[short]
        kernel_sources = [f"{username}/{slugify(kernel_title(spec.run_name, d))}" for d in deps]
        nb_params = {k: v for k, v in params.items() if k in spec.notebook_params(short)}
        if "run_dir" in nb_params:
            nb_params["run_dir"] = KAGGLE_WORKING
        if "dataset_path" in nb_params and data is not None:
            nb_params["dataset_path"] = data.kaggle_path
        gpu = short in MODEL_NOTEBOOKS
        setup = kernel_setup(short, code, data, kernel_sources)
        folder = out_root / spec.run_name / "kaggle" / Path(NOTEBOOKS[short]).stem
        folder.mkdir(parents=True, exist_ok=True)  # output/ of an earlier push stays until a new fetch replaces it
        render_notebook(notebook_dir / NOTEBOOKS[short], folder / NOTEBOOKS[short], nb_params, setup)
        meta = dict(template)
        meta.update(
            id=ref,
            title=title,
            code_file=NOTEBOOKS[short],
            is_private=not public,
            enable_gpu=gpu,
            dataset_sources=[code.ref] + ([data.ref] if data else []),
            kernel_sources=kernel_sources,
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
