"""Shared fixtures. The demo run is built once per test session and read by many tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "runner" / "run.py"


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python runner/run.py ARGS`` as a user types it; returns the finished process."""
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def kaggle_dry_run(params: str, tmp_path: Path) -> tuple[list[str], dict[str, dict], Path]:
    """``run.py PARAMS --kaggle --dry-run`` with no Kaggle credentials: the notebooks it would push in
    order (short names), each kernel's ``kernel-metadata.json`` by short name, and the kernels folder."""
    import json

    from ai2human.runner.params import NOTEBOOKS

    run = Path(params).stem
    out = tmp_path / "runs"
    proc = run_cli(params, "--kaggle", "--dry-run", "--out", str(out),
                   env={"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_CONFIG_DIR": str(tmp_path / "nokaggle")})
    assert proc.returncode == 0, proc.stderr
    pushes = [line for line in proc.stdout.splitlines() if line.strip().startswith("- push ")]
    order = [p.split(f"ai2human-{run}-")[1].split()[0] for p in pushes]
    kernels = out / run / "kaggle"
    meta = {short: json.loads((kernels / NOTEBOOKS[short].removesuffix(".ipynb") / "kernel-metadata.json").read_text())
            for short in order}
    return order, meta, kernels


def pytest_collection_modifyitems(items):
    """A test that reads the demo run (built on first use) or drives a browser is slow: `make unit`
    (-m "not slow and not browser") must never start the demo because one test forgot its marker.
    Every other test is marked `unit`, so `-m unit` selects the fast tier too."""
    for item in items:
        if "demo_run" in getattr(item, "fixturenames", ()) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
        if not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The run folder of `python runner/run.py params/demo.yaml`, executed once per session: the
    only execution of the demo notebooks in the suite; every notebook check reads this folder.

    Set AI2HUMAN_DEMO_RUN to an existing demo run folder to reuse it while developing.
    """
    reuse = os.environ.get("AI2HUMAN_DEMO_RUN")
    if reuse:
        return Path(reuse)
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("params/demo.yaml", "--out", str(out))
    assert proc.returncode == 0, f"demo run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out / "demo"
