"""environment.yml and pyproject.toml must install the same packages."""

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _normalise(req: str) -> str:
    return req.replace(" ", "").lower()


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"] if not r.startswith("torch")}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_normalise(r) for r in pip_section if not r.startswith(("-", "torch"))}
    assert listed == wanted, f"only in pyproject: {sorted(wanted - listed)}; only in environment.yml: {sorted(listed - wanted)}"


def test_both_install_the_cpu_torch_pinned_in_the_makefile():
    env = (REPO / "environment.yml").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "torch==2.13.0" in env and "TORCH_SPEC ?= torch==2.13.0" in makefile
