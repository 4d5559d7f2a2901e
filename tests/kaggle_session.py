"""A stand-in for a Kaggle session, for the setup-cell tests: a fake ``/kaggle`` folder and a
fresh venv whose only package is what the setup cell installs.

The venv has no site packages of its own. Third-party libraries (IPython, pandas, pip itself...)
are borrowed read-only from the test environment through a ``.pth`` path placed after the venv's
site-packages: a ``.pth`` inside that borrowed folder is not processed, so the editable install of
``ai2human`` stays invisible and the package can only come from the wheel the cell installs.
pip runs offline (``PIP_NO_INDEX``) with stub wheels for the pinned GPU stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from ai2human.runner.kaggle.wheel import gpu_requirements

# Runs the given cells in an IPython shell (so the cell's post_run_cell hook fires, as in a
# notebook), then reports what a notebook would see.
RUNNER = r'''
import importlib.util, json, os, sys
from IPython.core.interactiveshell import InteractiveShell

before = importlib.util.find_spec("ai2human") is not None
shell = InteractiveShell.instance()
for source in json.load(open(sys.argv[1])):
    shell.run_cell(source).raise_error()
shell.run_cell("""
import ai2human, importlib.metadata, os
from pathlib import Path
working = Path(os.environ["AI2HUMAN_KAGGLE_ROOT"]) / "working"
_probe = {"file": ai2human.__file__, "version": importlib.metadata.version("ai2human"),
          "run_dir": str(globals().get("run_dir", "")), "dataset_path": globals().get("dataset_path"),
          "wandb_mode": os.environ.get("WANDB_MODE"), "hf": os.environ.get("HF_TOKEN"),
          "listing": sorted(p.relative_to(working).as_posix() for p in working.rglob("*"))}
""").raise_error()
json.dump(dict(shell.user_ns["_probe"], before=before), open(sys.argv[2], "w"))
'''


def stub_wheel(folder: Path, name: str, version: str) -> None:
    """A wheel that satisfies pip's resolver for ``name==version`` and installs no module."""
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}.dist-info/RECORD", "")


class Session:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root = tmp / "kaggle"
        (self.root / "input").mkdir(parents=True)
        self.venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        self.python = self.venv / "bin" / "python"
        self.site = Path(subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
        (self.site / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        self.stubs = tmp / "stubs"
        self.stubs.mkdir()
        for pin in gpu_requirements():
            stub_wheel(self.stubs, *pin.split("=="))
        self.secrets = tmp / "secrets"
        self.secrets.mkdir()
        (self.secrets / "kaggle_secrets.py").write_text(
            "class UserSecretsClient:\n"
            "    def get_secret(self, label):\n"
            "        if label == 'HF_TOKEN':\n"
            "            return 'test-hf-value'\n"
            "        raise RuntimeError(label + ' is not attached')\n")

    def attach(self, slug: str, files: dict[str, bytes]) -> Path:
        """Mount a data set or a kernel output at /kaggle/input/<slug>/."""
        folder = self.root / "input" / slug
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder

    def run(self, sources: list[str], **env: str) -> dict:
        """Run ``sources`` as notebook cells on this "Kaggle"; what the notebook then sees."""
        cells, result = self.tmp / "cells.json", self.tmp / "probe.json"
        cells.write_text(json.dumps(sources))
        script = self.tmp / "run_cells.py"
        script.write_text(RUNNER)
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "WANDB", "HF_"))}
        environ.update(KAGGLE_KERNEL_RUN_TYPE="Batch", AI2HUMAN_KAGGLE_ROOT=str(self.root), PIP_NO_INDEX="1",
                       PIP_FIND_LINKS=str(self.stubs), PIP_NO_CACHE_DIR="1", PYTHONPATH=str(self.secrets),
                       MPLBACKEND="Agg", **env)
        proc = subprocess.run([str(self.python), str(script), str(cells), str(result)], cwd=self.tmp,
                              capture_output=True, text=True, env=environ, timeout=600)
        assert proc.returncode == 0, f"the cells failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return dict(json.loads(result.read_text()), stdout=proc.stdout)

    def installed(self) -> set[str]:
        listed = subprocess.run([str(self.python), "-m", "pip", "list", "--path", str(self.site), "--format", "json"],
                                capture_output=True, text=True, check=True).stdout
        return {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
