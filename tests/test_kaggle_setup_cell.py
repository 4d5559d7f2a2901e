"""The Kaggle setup cell: the first code cell of every notebook, doing nothing here and, on Kaggle,
installing the package and finding the inputs (kaggle/setup_cell.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from ai2human.runner.kaggle import setup_cell
from ai2human.runner.kaggle.api import Client
from ai2human.runner.kaggle.kernels import kernel_setup, render_notebook
from ai2human.runner.kaggle.wheel import CODE_SLUG, gpu_requirements, stage_code
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, REPO_ROOT
from kaggle_fixtures import PAIRS, fake, wheel_cache  # noqa: F401  (fixtures)
from kaggle_session import Session


def _with_cell(short: str, tmp_path: Path) -> Path:
    """The committed notebook as it is once the setup cell is in (inserted here until it is)."""
    nb = nbformat.read(NOTEBOOK_DIR / NOTEBOOKS[short], as_version=4)
    setup_cell.with_setup_cell(nb)
    path = tmp_path / NOTEBOOKS[short]
    nbformat.write(nb, path)
    return path


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_off_kaggle_the_cell_does_nothing_silently_and_fast(monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    namespace = {"run_dir": "", "dataset_path": "data/sample.csv"}
    printed = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        exec(setup_cell.cell_source(), namespace)
    assert time.perf_counter() - started < 0.05
    assert printed.getvalue() == ""
    assert namespace["run_dir"] == "" and namespace["dataset_path"] == "data/sample.csv"
    assert set(namespace) - {"__builtins__"} == {"run_dir", "dataset_path", "AI2HUMAN_KAGGLE", "os"}


def test_the_cell_goes_first_once_and_a_push_fills_it_in_place(tmp_path):
    for short in NOTEBOOKS:
        nb = nbformat.read(_with_cell(short, tmp_path), as_version=4)
        code = _code(nb)
        assert code[0] == setup_cell.cell_source()
        assert sum(c.metadata.get("tags") == [setup_cell.TAG] for c in nb.cells) == 1
        assert "parameters" in next(c for c in nb.cells if c.cell_type == "code" and c.source != code[0]).metadata["tags"]
        assert setup_cell.with_setup_cell(nb) is False  # already current: unchanged
        assert setup_cell.with_setup_cell(nb, {"build": "abc"}) is True
        assert _code(nb)[0].count("'build': 'abc'") == 1 and len(_code(nb)) == len(code)
        nbformat.validate(nb)


def test_the_insert_command_writes_then_checks_clean(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK_DIR / NOTEBOOKS["eda"], path)
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if setup_cell.TAG not in c.metadata.get("tags", [])]
    nbformat.write(nb, path)
    assert setup_cell.main(["--check", str(path)]) == 1
    assert setup_cell.main([str(path)]) == 0
    assert setup_cell.main(["--check", str(path)]) == 0
    assert _code(nbformat.read(path, as_version=4))[0] == setup_cell.cell_source()
    assert setup_cell.main([str(tmp_path / "missing.ipynb")]) == 2


def test_the_committed_notebooks_carry_the_current_cell_first():
    missing = [f for f in NOTEBOOKS.values()
               if setup_cell.setup_cell_index(nbformat.read(NOTEBOOK_DIR / f, as_version=4)) is None]
    if len(missing) == len(NOTEBOOKS):
        pytest.skip("the setup cell is not in the committed notebooks yet "
                    "(python -m ai2human.runner.kaggle.setup_cell notebooks/*.ipynb)")
    assert not missing, f"no setup cell in {missing}"
    for f in NOTEBOOKS.values():
        nb = nbformat.read(NOTEBOOK_DIR / f, as_version=4)
        assert _code(nb)[0] == setup_cell.cell_source(), f"{f}: setup cell stale or not first"


@pytest.mark.slow
def test_a_committed_notebook_uploaded_as_is_installs_the_package_on_kaggle(fake, tmp_path, monkeypatch):
    """Acceptance: the notebook and the code data set go up to (fake) Kaggle as a user would send
    them; the kernel's first cell, run in a clean environment, makes `import ai2human` work and
    finds the attached data, with no runner involved."""
    code = stage_code(tmp_path / "runs", "tester")
    folder = tmp_path / "kernel"
    folder.mkdir()
    shutil.copy(_with_cell("eda", tmp_path), folder / NOTEBOOKS["eda"])
    (folder / "kernel-metadata.json").write_text(json.dumps({
        "id": "tester/my-eda", "title": "my eda", "code_file": NOTEBOOKS["eda"], "language": "python",
        "kernel_type": "notebook", "is_private": True, "enable_gpu": False, "enable_internet": True,
        "dataset_sources": [f"tester/{CODE_SLUG}", "tester/my-pairs"]}))
    fake.add_dataset("tester/my-pairs", {"pairs.csv": PAIRS.encode()})
    client = Client(log=lambda *_: None).connect()
    client.upload_dataset(code.folder, code.ref, "by hand")
    client.push_kernel(folder)

    kaggle = Session(tmp_path / "session")
    kaggle.attach(CODE_SLUG, fake.datasets[code.ref]["files"])
    data = kaggle.attach("my-pairs", fake.datasets["tester/my-pairs"]["files"]) / "pairs.csv"
    pushed = nbformat.reads(fake.bodies("SaveKernel")[-1]["text"], as_version=4)
    assert _code(pushed)[0] == setup_cell.cell_source()  # the same cell, unfilled
    parameters = next(c.source for c in pushed.cells if "parameters" in c.metadata.get("tags", []))
    seen = kaggle.run([_code(pushed)[0], parameters])

    assert seen["before"] is False
    assert Path(seen["file"]).is_relative_to(kaggle.venv), f"ai2human came from {seen['file']}, not the wheel"
    assert seen["dataset_path"] == str(data)  # data/sample.csv is not on Kaggle: the attached file is used
    assert f"using the attached {data}" in seen["stdout"]
    assert seen["wandb_mode"] == "offline" and seen["hf"] == "test-hf-value"


@pytest.mark.slow
def test_pushed_kernels_install_their_build_and_get_their_inputs(tmp_path, monkeypatch, wheel_cache):
    """Each real notebook rendered as a push renders it, run up to its parameters on a fake /kaggle:
    the build's wheel with the GPU pins, the evaluation's adapter from the fine-tuning output, and
    a fine-tuning session's resume checkpoint copied from its own last output."""
    monkeypatch.setenv("AI2HUMAN_CACHE", str(wheel_cache))
    code = stage_code(tmp_path / "runs", "tester")
    kaggle = Session(tmp_path / "session")
    kaggle.attach(CODE_SLUG, {n: (code.folder / n).read_bytes() for n in (code.wheel, code.marker)})
    data = kaggle.attach("ai2human-sample", {"sample.csv": (REPO_ROOT / "data" / "sample.csv").read_bytes()})
    checkpoint = {"checkpoint-20/trainer_state.json": b'{"global_step": 20}', "checkpoint-20/adapter_model.safetensors": b"w",
                  "checkpoint-30/trainer_state.json": b"{cut off", "checkpoint-30/adapter_model.safetensors": b"w"}
    kaggle.attach("ai2human-t-finetune", {"adapter/adapter_config.json": b"{}", "train_metrics.json": b"{}",
                                          **{f"checkpoints/{k}": v for k, v in checkpoint.items()}})
    params = {"run_dir": "/kaggle/working", "dataset_path": "/kaggle/input/ai2human-sample/sample.csv"}
    for short in ("finetune", "evaluate"):
        shutil.rmtree(kaggle.root / "working", ignore_errors=True)
        sources = ["tester/ai2human-t-finetune"] if short == "evaluate" else []
        resume = "tester/ai2human-t-finetune" if short == "finetune" else ""
        rendered = tmp_path / "rendered" / NOTEBOOKS[short]
        rendered.parent.mkdir(exist_ok=True)
        render_notebook(NOTEBOOK_DIR / NOTEBOOKS[short], rendered, params, kernel_setup(short, code, sources, resume))
        nb = nbformat.read(rendered, as_version=4)
        injected = next(i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", []))
        seen = kaggle.run([c.source for c in nb.cells[: injected + 1] if c.cell_type == "code"])

        assert Path(seen["file"]).is_relative_to(kaggle.venv)
        assert seen["run_dir"] == str(kaggle.root / "working")
        assert seen["dataset_path"] == str(data / "sample.csv")
        if short == "evaluate":
            assert "adapter/adapter_config.json" in seen["listing"] and not any("checkpoint" in p for p in seen["listing"])
        else:  # the newest complete checkpoint (30 was cut off), and nothing else of the old output
            assert "checkpoints/checkpoint-20/trainer_state.json" in seen["listing"]
            assert not any(p.startswith(("checkpoints/checkpoint-30", "adapter")) for p in seen["listing"])
            assert "ai2human: resume checkpoint checkpoint-20 (step 20)" in seen["stdout"]
    assert {p.split("==")[0].replace("_", "-") for p in gpu_requirements()} | {"ai2human"} <= kaggle.installed()


def test_a_stale_code_data_set_is_refused_before_installing(tmp_path, wheel_cache, monkeypatch):
    monkeypatch.setenv("AI2HUMAN_CACHE", str(wheel_cache))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("AI2HUMAN_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    (tmp_path / "kaggle" / "input" / CODE_SLUG).mkdir(parents=True)
    (tmp_path / "kaggle" / "input" / CODE_SLUG / "build-0ld.json").write_text("{}")
    config = {"build": "n3w", "code_dataset": f"tester/{CODE_SLUG}", "code_slug": CODE_SLUG}
    with pytest.raises(RuntimeError, match="Build n3w of ai2human is not in the attached data set"):
        exec(setup_cell.cell_source(config), {})
