"""`--pull RUN`: edits made on Kaggle come back as a params file and a diff, applied to notebooks/
only with --apply and never over uncommitted changes."""

from __future__ import annotations

import json
import subprocess

import nbformat
import pytest

from ai2human.errors import UserError
from ai2human.runner.kaggle import workflow as kaggle
from ai2human.runner.params import NOTEBOOKS, resolve_run
from kaggle_fixtures import fake, manifest, parse, project, push, script_all, wheel_cache  # noqa: F401  (fixtures)


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def _edit_on_kaggle(fake) -> None:
    """What a user does in Kaggle's editor: a new learning rate, a changed line of code, a run."""
    nb = json.loads(fake.bodies("SaveKernel")[-1]["text"])
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if "injected-parameters" in cell["metadata"].get("tags", []):
            source = source.replace("learning_rate = 5e-05", "learning_rate = 0.0001")
        source = source.replace("print('train')", "print('train harder')")
        cell["source"] = source
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran on Kaggle\n"}]
            cell["execution_count"] = 3
    fake.edit("ai2human-v5-finetune", json.dumps(nb))


def pull(project, *flags):
    return kaggle.main(parse("--pull", "v5", "--out", str(project.out), *flags), [], notebook_dir=project.notebooks)


def test_pull_writes_the_params_change_and_shows_the_code_diff_then_applies_it(fake, project, capsys):
    script_all(fake)
    assert push(project, specs=[project.spec(only="eda,finetune")]) == 0
    _git(project.notebooks, "init", "-q")
    _git(project.notebooks, "add", ".")
    _git(project.notebooks, "commit", "-q", "-m", "notebooks")
    committed = (project.notebooks / NOTEBOOKS["finetune"]).read_text()
    eda = (project.notebooks / NOTEBOOKS["eda"]).read_text()
    _edit_on_kaggle(fake)
    capsys.readouterr()

    assert pull(project) == 0
    out = capsys.readouterr().out
    assert "-print('train')\n+print('train harder')" in out
    assert "parameters edited on Kaggle: learning_rate: 5e-05 -> 0.0001" in out
    assert "eda: pulled tester/ai2human-v5-eda" in out and "its cells match notebooks/01_eda.ipynb" in out
    assert "pass --apply" in out
    assert (project.notebooks / NOTEBOOKS["finetune"]).read_text() == committed  # not applied
    params_file = project.out / "v5/kaggle/pulled/v5-pulled.yaml"
    spec = resolve_run(params_file, notebook_dir=project.notebooks)
    assert spec.params["learning_rate"] == 0.0001 and spec.params["max_steps"] == 100 and spec.run_name == "v5-pulled"
    pulled = nbformat.read(project.out / "v5/kaggle/pulled/02_finetune/02_finetune.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in pulled.cells if c.cell_type == "code")

    # uncommitted work in the notebook to be rewritten: refused, left alone
    dirty = committed.replace("print('train')", "print('mine')")
    (project.notebooks / NOTEBOOKS["finetune"]).write_text(dirty)
    with pytest.raises(UserError) as err:
        pull(project, "--apply")
    assert err.value.exit_code == 2 and "uncommitted changes in 02_finetune.ipynb" in str(err.value)
    assert (project.notebooks / NOTEBOOKS["finetune"]).read_text() == dirty

    (project.notebooks / NOTEBOOKS["finetune"]).write_text(committed)
    assert pull(project, "--apply") == 0
    applied = nbformat.read(project.notebooks / NOTEBOOKS["finetune"], as_version=4)
    sources = [c.source for c in applied.cells]
    assert "print('train harder')" in sources
    assert any("learning_rate = 5e-05" in s for s in sources)  # parameters travel in the params file
    assert not any("_ai2human_setup" in s or s.startswith("# Parameters") for s in sources)
    assert all(not c.get("outputs") for c in applied.cells if c.cell_type == "code")
    assert (project.notebooks / NOTEBOOKS["eda"]).read_text() == eda  # unchanged on Kaggle: not rewritten


def test_pull_of_a_run_that_was_not_pushed_names_the_pushed_ones(fake, project):
    with pytest.raises(UserError, match="--pull v5: .* is not a run pushed to Kaggle"):
        pull(project)


def test_apply_goes_with_pull(fake, project):
    with pytest.raises(UserError, match="--apply goes with --pull"):
        kaggle.main(parse("--kaggle", "--apply", "--out", str(project.out)), [project.spec()],
                    notebook_dir=project.notebooks)
