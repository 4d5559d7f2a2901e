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


def _make_setup_commands(**variables: str) -> str:
    """What `make setup` would run in a fresh clone (make -n prints the recipe, runs nothing)."""
    import subprocess

    args = [f"{k}={v}" for k, v in {"VENV": "/nonexistent/venv", **variables}.items()]
    proc = subprocess.run(["make", "-n", "-B", "setup", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_setup_asks_for_the_cpu_build_of_torch_by_name():
    """PyPI's Linux torch is the CUDA build (~20 nvidia-* wheels); `+cpu` exists only on PyTorch's CPU
    index (or a store that copied it), so the pin cannot resolve to a CUDA build anywhere."""
    commands = _make_setup_commands()
    assert '"torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu' in commands
    # the CPU index unreachable: the same CPU pin from the configured index, then the plain one
    assert commands.index('"torch==2.13.0+cpu" 2>/dev/null') < commands.index('pip install -q "torch==2.13.0";')
    assert commands.index("torch==2.13.0") < commands.index('-e ".[dev]"'), "torch before the package"
    assert "pip install -q mytorch==1" in _make_setup_commands(TORCH_SPEC="mytorch==1")


def test_conda_environment_pins_the_same_cpu_torch():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section
    assert "torch==2.13.0+cpu" in pip_section


def test_dev_extra_opens_the_notebooks_and_make_unit_skips_the_slow_tiers():
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(r.startswith(("jupyterlab", "notebook")) for r in dev), "a notebook UI to open notebooks/ locally"
    makefile = (REPO / "Makefile").read_text()
    assert '-m "not slow and not browser"' in makefile.split("\nunit:", 1)[1].split("\n\n", 1)[0]
