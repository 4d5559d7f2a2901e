"""Shared by the tests/test_kaggle_*.py files: tiny notebooks, a project, the fake Kaggle server.

The fake server (tests/fake_kaggle.py) answers the HTTP calls of the installed official client;
nothing of ours is mocked. The notebooks are tiny ones made here, so each test takes seconds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ai2human.runner.kaggle import api as kaggle_api
from ai2human.runner.kaggle import workflow as kaggle
from ai2human.runner.params import NOTEBOOKS, resolve_run
from fake_kaggle import FakeKaggle

KEY = "5f3c9a0b1d2e4f6a8b7c9d0e1f2a3b4c"
TOKEN_LIKE = "hf_" + "Qx7" * 12
PAIRS = "human,LLM\n" + "".join(f"A walk by the sea number {i}.,A stroll along the coastline number {i}.\n" for i in range(12))


def make_notebook(path: Path, params: str, *code: str) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": f"# {path.stem}"},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params, "outputs": [], "execution_count": None}]
    cells += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 4}
    path.write_text(json.dumps(nb))


def executed_nb(*cells: tuple[str, list]) -> bytes:
    """An executed notebook as Kaggle returns it: ``(source, outputs)`` per code cell."""
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": src, "outputs": outs, "execution_count": i + 1}
                    for i, (src, outs) in enumerate(cells)],
          "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 4}
    return json.dumps(nb).encode()


OK_NOTEBOOK = executed_nb(("print('done')", [{"output_type": "stream", "name": "stdout", "text": "done\n"}]))
COMMON = 'run_dir = ""  # out\ndataset_path = "data/sample.csv"  # data\nmodel_name = "unsloth/Qwen2.5-7B"  # model\n'
SETUP = "from ai2human.rundir import prepare_run_dir\nrun_dir = prepare_run_dir(run_dir)"


@dataclass
class Project:
    notebooks: Path
    params: Path
    out: Path
    data: Path

    def spec(self, params: Path | None = None, only: str | None = None):
        return resolve_run(params or self.params, only=only, notebook_dir=self.notebooks)


@pytest.fixture
def project(tmp_path) -> Project:
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    make_notebook(nbs / NOTEBOOKS["eda"], COMMON, SETUP, "print('eda')")
    make_notebook(nbs / NOTEBOOKS["finetune"], COMMON + "max_steps = 60  # steps\nlearning_rate = 5e-05  # lr\nresume = \"auto\"  # resume\n", SETUP,
                  "print('train')")
    make_notebook(nbs / NOTEBOOKS["evaluate"], COMMON, SETUP, "print('evaluate')")
    data = tmp_path / "pairs.csv"
    data.write_text(PAIRS)
    params = tmp_path / "v5.yaml"
    params.write_text(f"# the reference run\ndataset_path: {data}\nmax_steps: 100\n")
    return Project(nbs, params, tmp_path / "runs", data)


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ai2human-cache")


@pytest.fixture
def fake(monkeypatch, tmp_path, wheel_cache):
    server = FakeKaggle(username="tester", key=KEY).start()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AI2HUMAN_CACHE", str(wheel_cache))
    for name in ("KAGGLE_CONFIG_DIR", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", "tester")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setattr(kaggle_api, "RETRY_BASE_S", 0.01)
    yield server
    server.stop()


def parse(*argv: str) -> argparse.Namespace:
    """The flags as the runner's parser has them (its own flags plus kaggle.add_arguments)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("params", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--fresh", action="store_true")
    kaggle.add_arguments(parser)
    return parser.parse_args(list(argv))


def push(project: Project, *flags: str, specs=None) -> int:
    args = parse("--kaggle", "--out", str(project.out), "--poll-interval", "0", *flags)
    return kaggle.main(args, specs if specs is not None else [project.spec()], notebook_dir=project.notebooks)


def script_all(fake: FakeKaggle, run: str = "v5", **statuses) -> None:
    """Every kernel of the run completes (unless told otherwise); the data set is already on Kaggle."""
    fake.add_dataset("tester/ai2human-pairs", {"pairs.csv": b"human,LLM\n"})
    for short in ("eda", "finetune", "evaluate"):
        fake.script(f"ai2human-{run}-{short}", statuses.get(short, ["COMPLETE"]),
                    {"__notebook__.ipynb": OK_NOTEBOOK, f"{short}.json": b"{}"})


def manifest(project: Project, run: str = "v5") -> dict:
    return json.loads((project.out / run / "manifest.json").read_text())


def cells(body: dict) -> list[dict]:
    return json.loads(body["text"])["cells"]
