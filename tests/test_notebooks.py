"""The committed notebooks: clean, parameterised the same way, and their first cells run as a user opens them.

Whether every cell runs with the demo parameters is checked on the demo run (test_demo_run.py),
which the suite executes once."""

from __future__ import annotations

import json
import re

import pytest

from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, declared_parameters
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
@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_first_three_code_cells_run_from_the_notebooks_folder_with_the_defaults(path):
    """Opened with the notebook UI, a kernel starts in notebooks/ with every default as committed
    (dataset_path "data/sample.csv", run_dir ""): the Kaggle setup cell (a no-op here), the parameters,
    setup and data cells must run there.
    None of them may load a model (a 7B download is not a first step)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"][:4]  # the Kaggle setup cell (a no-op here) + the first three
    for cell in code:
        assert not re.search(r"\b(load_model|load_for_inference|from_pretrained)\(", cell.source), cell.source[:300]
    nb.cells = code
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{errors[0].ename}: {errors[0].evalue}" if errors else ""
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
    assert f"run_dir: {REPO / 'runs' / 'interactive'}" in printed, "run_dir '' is the checkout's runs/interactive"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_papermill_sees_every_parameter(path):
    """Papermill skips a parameters line it cannot parse (an '=' in its comment) and then warns that
    the runner's value is an unknown parameter; every line must parse for papermill as for us."""
    import papermill as pm

    from ai2human.runner.params import read_parameters

    assert set(pm.inspect_notebook(str(path))) == set(read_parameters(path))
