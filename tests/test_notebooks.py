"""The committed notebooks: clean, parameterised the same way, executable with the demo parameters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, declared_parameters, resolve_run
from ai2human.runner.runs import resolve_paths
from conftest import REPO

NOTEBOOK_FILES = [NOTEBOOK_DIR / f for f in NOTEBOOKS.values()]


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"cell {i} has outputs"
        assert "widgets" not in cell.get("metadata", {}), f"cell {i} has widget state"
    assert "widgets" not in nb["metadata"]
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# "), "a title cell comes first"
    headings = [c for c in nb["cells"] if c["cell_type"] == "markdown" and "".join(c["source"]).lstrip().startswith("## ")]
    assert len(headings) >= 3, "one ## section per stage"


def test_shared_parameters_mean_the_same_everywhere():
    declared = declared_parameters()  # raises if one name has two defaults
    for name in ("run_dir", "dataset_path", "human_column", "ai_column", "model_name", "max_seq_length"):
        assert name in declared, name
    assert declared["model_name"].default == "unsloth/Qwen2.5-7B"
    assert declared["human_column"].default == "human" and declared["ai_column"].default == "LLM"
    assert declared["max_seq_length"].default == 2048


@pytest.mark.slow
def test_notebooks_pass_nbval_with_the_demo_parameters(tmp_path):
    """nbval executes the notebooks as rendered for the demo (parameters injected, nothing run)."""
    import papermill as pm

    spec = resolve_run(REPO / "params" / "demo.yaml")
    params = resolve_paths(spec)
    run_dir = tmp_path / "run"
    rendered = []
    for short in spec.notebooks:
        out = tmp_path / NOTEBOOKS[short]
        nb_params = {k: v for k, v in params.items() if k in spec.notebook_params(short)}
        pm.execute_notebook(str(NOTEBOOK_DIR / NOTEBOOKS[short]), str(out), parameters={**nb_params, "run_dir": str(run_dir)},
                            prepare_only=True, progress_bar=False)
        rendered.append(str(out))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", *rendered],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert (run_dir / "adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_papermill_sees_every_parameter(path):
    """Papermill skips a parameters line it cannot parse (an '=' in its comment) and then warns that
    the runner's value is an unknown parameter; every line must parse for papermill as for us."""
    import papermill as pm

    from ai2human.runner.params import read_parameters

    assert set(pm.inspect_notebook(str(path))) == set(read_parameters(path))
