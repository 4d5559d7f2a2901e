"""The code data set: the package built as a wheel from the working tree, in ``<you>/ai2human-code``.

The kernels run exactly the local code. The wheel is built once per hash of its sources and staged
with a ``build-<hash>.json`` marker; a pushed kernel's setup cell refuses to run if the attached
version holds another build (Kaggle can mount a stale version for a moment). No network here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ai2human.errors import UserError
from ai2human.runner.params import REPO_ROOT

TEMPLATES = REPO_ROOT / "kaggle"
CODE_SLUG = "ai2human-code"


def dataset_metadata(ref: str, title: str, license_name: str, description: str) -> dict:
    """``dataset-metadata.json`` for a private data set, from the template in kaggle/."""
    meta = json.loads((TEMPLATES / "dataset-metadata.json").read_text(encoding="utf-8"))
    meta.update(id=ref, title=title, description=description, licenses=[{"name": license_name}])
    return {k: v for k, v in meta.items() if v != ""}  # an empty subtitle is an error, an absent one is not


@dataclass
class CodeBuild:
    ref: str  # owner/ai2human-code
    build: str  # hash of everything that goes into the wheel
    folder: Path  # what is uploaded: the wheel, the build marker, dataset-metadata.json
    wheel: str
    marker: str


# What drives and measures runs stays on the user's machine: a kernel needs only the library.
NOT_SHIPPED = ("runner", "bench")


def package_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files the wheel is built from (and the build hash is taken over): the library only."""
    files = [root / "pyproject.toml", root / "README.md", *sorted(root.glob("LICEN[CS]E*"))]
    package = root / "src" / "ai2human"
    files += sorted(
        p for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        and p.relative_to(package).parts[0] not in NOT_SHIPPED
    )
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
    meta = dataset_metadata(ref, "ai2human code", "apache-2.0",
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
