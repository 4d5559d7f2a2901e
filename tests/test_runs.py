"""Executing a run: manifest, failure reporting, resuming, and the checks before anything runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ai2human.errors import ParamsError
from ai2human.runner.params import NOTEBOOKS, resolve_run
from ai2human.rundir import prepare_run_dir
from ai2human.runner.execute import execute_run
from ai2human.runner.precheck import model_billions, resolve_paths
from conftest import REPO, run_cli


def _notebook(path: Path, params: str, *code: str) -> None:
    cells = [{"id": "params", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params, "outputs": [], "execution_count": None}]
    cells += [{"id": f"c{i}", "cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for i, c in enumerate(code)]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


@pytest.fixture
def toy(tmp_path):
    """Three quick notebooks; finetune fails while run_dir/../FAIL exists."""
    d = tmp_path / "notebooks"
    d.mkdir()
    _notebook(d / NOTEBOOKS["eda"], 'run_dir = ""  # out\nsteps = 3  # n\n', "open(f'{run_dir}/eda.txt', 'w').write('ok')")
    _notebook(d / NOTEBOOKS["finetune"], 'run_dir = ""  # out\nsteps = 3  # n\n',
              "import os\nprint('training', steps)",
              "if os.path.exists(os.path.join(run_dir, '..', 'FAIL')):\n    raise RuntimeError('loss is nan')",
              "open(f'{run_dir}/adapter.txt', 'w').write('ok')")
    _notebook(d / NOTEBOOKS["evaluate"], 'run_dir = ""  # out\n', "assert open(f'{run_dir}/adapter.txt').read() == 'ok'")
    params = tmp_path / "toy.yaml"
    params.write_text("# a toy run\nsteps: 5\n")
    return d, params, tmp_path / "runs"


@pytest.mark.slow  # executes notebooks in kernels
def test_failed_notebook_is_kept_reported_and_resumed(toy, capsys):
    nb_dir, params, out = toy
    (out / "FAIL").parent.mkdir(parents=True)
    (out / "FAIL").write_text("")
    spec = resolve_run(params, notebook_dir=nb_dir)

    assert execute_run(spec, out, notebook_dir=nb_dir) == 1
    run = out / "toy"
    manifest = json.loads((run / "manifest.json").read_text())
    nbs = manifest["notebooks"]
    assert manifest["status"] == "failed"
    assert nbs["eda"]["status"] == "completed"
    assert nbs["finetune"]["status"] == "failed"
    assert nbs["finetune"]["error"]["exception"] == "RuntimeError"
    assert nbs["finetune"]["error"]["message"] == "loss is nan"
    assert nbs["finetune"]["error"]["cell_first_line"].startswith("if os.path.exists")
    assert nbs["evaluate"]["status"] == "skipped"
    partial = json.loads((run / NOTEBOOKS["finetune"]).read_text())
    assert any(o.get("ename") == "RuntimeError" for c in partial["cells"] for o in c.get("outputs", []))
    assert (run / "02_finetune.html").is_file()
    printed = capsys.readouterr().out
    assert "finetune: FAILED in cell" in printed and "RuntimeError: loss is nan" in printed

    (out / "FAIL").unlink()
    assert execute_run(spec, out, notebook_dir=nb_dir) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert [n["status"] for n in manifest["notebooks"].values()] == ["completed"] * 3
    assert len(manifest["invocations"]) == 2
    assert "eda: completed in an earlier invocation, skipped" in capsys.readouterr().out


@pytest.mark.slow  # executes notebooks in kernels
def test_manifest_records_what_ran_and_where(toy):
    nb_dir, params, out = toy
    spec = resolve_run(params, notebook_dir=nb_dir)
    assert execute_run(spec, out, notebook_dir=nb_dir) == 0
    m = json.loads((out / "toy" / "manifest.json").read_text())
    assert m["params"]["steps"] == 5 and m["overrides"] == {"steps": 5}
    assert m["params_file_text"].startswith("# a toy run")
    assert set(m["git"]) == {"commit", "dirty"}
    assert "torch" in m["packages"] and m["python"]
    assert m["hardware"]["device"] in ("cpu", "cuda")
    assert all(n["wall_s"] > 0 and n["html"] for n in m["notebooks"].values())
    assert m["peak_rss_mib"]["largest_kernel"] > 0
    executed = json.loads((out / "toy" / NOTEBOOKS["eda"]).read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert f'run_dir = "{out.resolve() / "toy"}"' in "".join(injected[0]["source"])


@pytest.mark.slow  # executes notebooks in kernels
def test_rerun_with_other_parameters_needs_fresh(toy):
    nb_dir, params, out = toy
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    changed = resolve_run(params, ["steps=9"], notebook_dir=nb_dir)
    with pytest.raises(ParamsError, match=r"other parameters \(steps: 5 -> 9\).*--fresh"):
        execute_run(changed, out, notebook_dir=nb_dir)
    assert execute_run(changed, out, fresh=True, notebook_dir=nb_dir) == 0
    assert json.loads((out / "toy" / "manifest.json").read_text())["params"]["steps"] == 9


def test_folder_that_is_not_a_run_is_never_touched(toy):
    nb_dir, params, out = toy
    (out / "toy").mkdir(parents=True)
    (out / "toy" / "precious.txt").write_text("keep me")
    with pytest.raises(ParamsError, match="not a run folder"):
        execute_run(resolve_run(params, notebook_dir=nb_dir), out, fresh=True, notebook_dir=nb_dir)
    assert (out / "toy" / "precious.txt").read_text() == "keep me"


@pytest.mark.slow  # executes notebooks in kernels
def test_real_eda_notebook_failing_in_a_cell_keeps_partial_notebook_then_resumes(tmp_path):
    data = tmp_path / "pairs.csv"
    shutil.copy(REPO / "data" / "sample.csv", data)
    out = tmp_path / "runs"
    # A tokenizer that does not exist passes every check before the run and fails in the notebook.
    args = ["params/demo.yaml", "--only", "eda", "--out", str(out), "--set", f"dataset_path={data}",
            "--set", f"tokenizer_name={tmp_path / 'no-tokenizer'}"]
    proc = run_cli(*args)
    assert proc.returncode == 1, proc.stderr
    assert "eda: FAILED in cell" in proc.stdout
    manifest = json.loads((out / "demo" / "manifest.json").read_text())
    assert manifest["notebooks"]["eda"]["status"] == "failed"
    assert (out / "demo" / NOTEBOOKS["eda"]).is_file()
    from ai2human.models.tiny import resolve_model_name

    shutil.copytree(resolve_model_name("local:tiny-qwen2"), tmp_path / "no-tokenizer")  # now it exists
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "demo" / "manifest.json").read_text())
    assert manifest["notebooks"]["eda"]["status"] == "completed"
    assert len(manifest["invocations"]) == 2


@pytest.mark.parametrize(
    "name, size",
    [("unsloth/Qwen2.5-7B", 7.0), ("Qwen/Qwen2.5-0.5B-Instruct", 0.5), ("meta-llama/Llama-3.1-70B", 70.0),
     ("gpt2", None), ("unsloth/Qwen2.5-7B-bnb-4bit", 7.0)],
)
def test_model_size_from_name(name, size):
    assert model_billions(name) == size


def test_relative_paths_resolve_against_cwd_when_given_and_repo_when_default(tmp_path, monkeypatch):
    spec = resolve_run(REPO / "params" / "demo.yaml")
    assert resolve_paths(spec, cwd=tmp_path)["dataset_path"] == str(REPO / "data" / "sample.csv")
    spec = resolve_run(REPO / "params" / "demo.yaml", ["dataset_path=mine.csv"])
    assert resolve_paths(spec, cwd=tmp_path)["dataset_path"] == str(tmp_path / "mine.csv")


def test_prepare_run_dir_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert prepare_run_dir("") == tmp_path / "runs" / "interactive"
    assert prepare_run_dir(str(tmp_path / "x")).is_dir()


@pytest.mark.slow  # executes notebooks in kernels
def test_run_folder_with_a_credential_is_not_declared_complete(toy):
    nb_dir, params, out = toy
    token = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7"
    _notebook(nb_dir / NOTEBOOKS["evaluate"], 'run_dir = ""  # out\n', f"print('{token}')")
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 1
    manifest = json.loads((out / "toy" / "manifest.json").read_text())
    assert manifest["status"] == "credentials_found"
    assert any("03_evaluate.ipynb" in hit for hit in manifest["credentials_found"])
