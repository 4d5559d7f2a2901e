"""`--kaggle`: render, push, follow and fetch, against a fake Kaggle API on 127.0.0.1.

The fake server (tests/fake_kaggle.py) answers the HTTP calls of the installed official client;
nothing of ours is mocked. The notebooks are tiny ones made here, so each test takes seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ai2human.runner.kaggle import workflow as kaggle
from ai2human.runner.kaggle import api as kaggle_api
from ai2human.runner import params
from ai2human.errors import UserError
from ai2human.runner.kaggle.bundle import CODE_SLUG, gpu_requirements, kernel_setup, render_notebook, stage_code
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, resolve_run
from fake_kaggle import FakeKaggle

KEY = "5f3c9a0b1d2e4f6a8b7c9d0e1f2a3b4c"
TOKEN_LIKE = "hf_" + "Qx7" * 12


def _notebook(path: Path, params: str, *code: str) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": f"# {path.stem}"},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params, "outputs": [], "execution_count": None}]
    cells += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 4}
    path.write_text(json.dumps(nb))


def _executed(*cells: tuple[str, list]) -> bytes:
    """An executed notebook as Kaggle returns it: ``(source, outputs)`` per code cell."""
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": src, "outputs": outs, "execution_count": i + 1}
                    for i, (src, outs) in enumerate(cells)],
          "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 4}
    return json.dumps(nb).encode()


OK_NOTEBOOK = _executed(("print('done')", [{"output_type": "stream", "name": "stdout", "text": "done\n"}]))
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
    _notebook(nbs / NOTEBOOKS["eda"], COMMON, SETUP, "print('eda')")
    _notebook(nbs / NOTEBOOKS["finetune"], COMMON + "max_steps = 60  # steps\n", SETUP, "print('train')")
    _notebook(nbs / NOTEBOOKS["evaluate"], COMMON, SETUP, "print('evaluate')")
    data = tmp_path / "pairs.csv"
    data.write_text("human,LLM\nA walk by the sea.,A stroll along the coastline.\n")
    params = tmp_path / "v5.yaml"
    params.write_text(f"# the reference run\ndataset_path: {data}\nmax_steps: 100\n")
    return Project(nbs, params, tmp_path / "runs", data)


@pytest.fixture(autouse=True)
def kaggle_meta_keys(monkeypatch):
    """The run-metadata keys kaggle.py reads, until params.META declares them."""
    for key, spec in {"kaggle_dataset": (str, "", "the Kaggle data set holding dataset_path"),
                      "kaggle_data_license": (str, "other", "licence of an uploaded data set")}.items():
        if key not in params.META:
            monkeypatch.setitem(params.META, key, spec)


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


# ---------------------------------------------------------------------------- pushing and following


def test_push_follow_complete_and_fetch(fake, project, capsys):
    fake.script("ai2human-v5-eda", ["QUEUED", "RUNNING", "COMPLETE"],
                {"__notebook__.ipynb": OK_NOTEBOOK, "eda_summary.json": b'{"rows": 1}'})
    fake.script("ai2human-v5-finetune", ["QUEUED", "RUNNING", "RUNNING", "COMPLETE"],
                {"__notebook__.ipynb": OK_NOTEBOOK, "adapter/adapter_config.json": b"{}",
                 "checkpoints/checkpoint-20/optimizer.pt": b"\0" * 64},
                log=json.dumps([{"stream_name": "stdout", "time": 1.0, "data": "training\n"}]))
    fake.script("ai2human-v5-evaluate", ["RUNNING", "COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK, "metrics.json": b"{}"})

    assert push(project, "--upload-data") == 0

    saves = {b["slug"].split("/")[1]: b for b in fake.bodies("SaveKernel")}
    assert list(saves) == ["ai2human-v5-eda", "ai2human-v5-finetune", "ai2human-v5-evaluate"]
    eda, finetune, evaluate = saves.values()
    for body, title in ((eda, "ai2human v5 eda"), (finetune, "ai2human v5 finetune"), (evaluate, "ai2human v5 evaluate")):
        assert body["newTitle"] == title
        assert (body["language"], body["kernelType"]) == ("python", "notebook")
        assert body["isPrivate"] is True and body["enableInternet"] is True
        assert body["datasetDataSources"] == [f"tester/{CODE_SLUG}", "tester/ai2human-pairs"]
    assert eda["enableGpu"] is False and "machineShape" not in eda
    assert finetune["enableGpu"] is True and finetune["machineShape"] == "NvidiaTeslaT4"
    assert evaluate["kernelDataSources"] == ["tester/ai2human-v5-finetune"]
    assert not finetune.get("kernelDataSources")

    # evaluate went out only once finetune had completed and its output was home
    order = [(c.method, c.body.get("kernelSlug") or c.body.get("slug")) for c in fake.calls]
    assert order.index(("SaveKernel", "tester/ai2human-v5-evaluate")) > order.index(("ListKernelSessionOutput", "ai2human-v5-finetune"))

    # the pushed notebook: parameters injected for Kaggle, then the setup cell, then the notebook's own cells
    pushed = cells(finetune)
    injected = next(i for i, c in enumerate(pushed) if "injected-parameters" in c["metadata"].get("tags", []))
    assert 'run_dir = "/kaggle/working"' in pushed[injected]["source"]
    assert 'dataset_path = "/kaggle/input/ai2human-pairs/pairs.csv"' in pushed[injected]["source"]
    assert "max_steps = 100" in pushed[injected]["source"]
    setup = pushed[injected + 1]
    assert setup["metadata"]["tags"] == ["kaggle-setup"]
    for pin in gpu_requirements():
        assert repr(pin) in setup["source"]
    assert pushed[injected + 2]["source"] == SETUP
    assert "'pip': []," in cells(eda)[injected + 1]["source"]  # no GPU stack for the EDA

    # the code and the data went up as private data sets
    code = fake.datasets[f"tester/{CODE_SLUG}"]
    assert code["meta"]["isPrivate"] is True and code["meta"]["licenseName"] == "apache-2.0"
    wheel = next(name for name in code["files"] if name.endswith(".whl"))
    assert any(name.startswith("build-") for name in code["files"])
    data = fake.datasets["tester/ai2human-pairs"]
    assert data["files"] == {"pairs.csv": project.data.read_bytes()}
    assert data["meta"]["isPrivate"] is True and data["meta"]["licenseName"] == "other"
    assert f"'{wheel}'" in setup["source"]

    # the results came home, with an HTML report per notebook, and the manifest says where
    run = project.out / "v5"
    assert (run / "kaggle/02_finetune/output/adapter/adapter_config.json").is_file()
    assert (run / "kaggle/02_finetune/output/ai2human-v5-finetune.log").is_file()
    assert not (run / "kaggle/02_finetune/output/checkpoints").exists()  # resume state stays on Kaggle
    m = manifest(project)
    assert m["status"] == "completed" and m["executor"] == "kaggle"
    for short in ("eda", "finetune", "evaluate"):
        entry = m["notebooks"][short]
        assert entry["status"] == "completed" and entry["kaggle_status"] == "COMPLETE"
        assert entry["url"].endswith(f"/code/tester/ai2human-v5-{short}") and entry["version"] == 1
        assert (run / entry["html"]).is_file() and (run / entry["notebook_output"]).name == NOTEBOOKS[short]
    assert m["kaggle"]["accelerator"] == "NvidiaTeslaT4"

    out = capsys.readouterr().out
    assert "v5/eda: QUEUED after" in out and "v5/eda: RUNNING after" in out and "v5/eda: COMPLETE after" in out
    assert "] v5: eda RUNNING" in out and "evaluate waiting for finetune" in out  # the status line


def test_error_shows_the_log_tail_and_the_failing_cell(fake, project, capsys):
    failed_nb = _executed(
        ("from ai2human.rundir import prepare_run_dir", []),
        ("trainer = build()\ntrainer.train()", [{"output_type": "error", "ename": "RuntimeError",
                                                 "evalue": "loss is nan", "traceback": []}]),
    )
    log = [{"stream_name": "stdout", "time": i, "data": f"step {i}\n"} for i in range(40)]
    log.append({"stream_name": "stderr", "time": 41, "data": "RuntimeError: loss is nan\n"})
    script_all(fake)
    fake.script("ai2human-v5-finetune", ["RUNNING", "ERROR"], {"__notebook__.ipynb": failed_nb},
                log=json.dumps(log), failure="Your notebook tried to allocate more memory than is available.")

    assert push(project) == 1

    out = capsys.readouterr().out
    assert "v5/finetune: failed on Kaggle: Your notebook tried to allocate more memory" in out
    assert "failing code cell 2 raised RuntimeError: loss is nan" in out
    assert "| trainer.train()" in out
    assert "step 39" in out and "RuntimeError: loss is nan" in out
    assert "step 10\n" not in out  # only the last lines of the log
    assert "v5/evaluate: skipped because finetune did not complete" in out
    slugs = [b["slug"] for b in fake.bodies("SaveKernel")]
    assert "tester/ai2human-v5-evaluate" not in slugs
    m = manifest(project)
    assert m["status"] == "failed"
    assert m["notebooks"]["eda"]["status"] == "completed"
    assert m["notebooks"]["finetune"]["status"] == "failed"
    assert m["notebooks"]["finetune"]["error"]["exception"] == "RuntimeError"
    assert m["notebooks"]["evaluate"]["status"] == "skipped"
    assert (project.out / "v5" / m["notebooks"]["finetune"]["html"]).is_file()  # the failed report, too


def test_an_error_without_output_still_says_why(fake, project, capsys):
    script_all(fake)
    fake.script("ai2human-v5-eda", ["ERROR"], failure="Kernel was cancelled: out of quota")
    fake.fail("ListKernelSessionOutput", 404)
    assert push(project, specs=[project.spec(only="eda")]) == 1
    out = capsys.readouterr().out
    assert "v5/eda: failed on Kaggle: Kernel was cancelled: out of quota" in out
    assert "failing cell: unknown" in out
    assert manifest(project)["notebooks"]["eda"]["status"] == "failed"


def test_409_and_429_are_retried_with_backoff(fake, project, capsys):
    script_all(fake)
    fake.fail("SaveKernel", 409)
    fake.fail("GetKernelSessionStatus", 429, times=2, headers={"Retry-After": "0"})

    assert push(project, specs=[project.spec(only="eda")]) == 0

    out = capsys.readouterr().out
    assert "pushing tester/ai2human-v5-eda: HTTP 409; retrying in 0.0 s (attempt 2 of 6)" in out
    assert "HTTP 429; retrying in 0.0 s (attempt 3 of 6)" in out
    assert fake.methods().count("SaveKernel") == 2
    assert manifest(project)["notebooks"]["eda"]["status"] == "completed"


def test_a_persistent_error_is_not_retried_forever(fake, project, capsys):
    script_all(fake)
    fake.fail("SaveKernel", 503, times=kaggle_api.MAX_ATTEMPTS)
    assert push(project, specs=[project.spec(only="eda")]) == 1
    assert "error: pushing tester/ai2human-v5-eda: HTTP 503" in capsys.readouterr().out
    assert fake.methods().count("SaveKernel") == kaggle_api.MAX_ATTEMPTS


def test_rejected_credentials_exit_2(fake, project, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "f" * 32)
    script_all(fake)
    with pytest.raises(UserError, match="HTTP 401.*check the credentials"):
        push(project, specs=[project.spec(only="eda")])


def test_no_wait_pushes_and_returns_then_follow_resumes(fake, project, capsys):
    script_all(fake, finetune=["RUNNING", "COMPLETE"])

    assert push(project, "--no-wait") == 0
    assert [b["slug"] for b in fake.bodies("SaveKernel")] == ["tester/ai2human-v5-eda", "tester/ai2human-v5-finetune"]
    assert "GetKernelSessionStatus" not in fake.methods()
    assert "--follow v5" in capsys.readouterr().out
    assert manifest(project)["notebooks"]["evaluate"]["status"] == "pending"

    args = parse("--follow", "v5", "--out", str(project.out), "--poll-interval", "0")
    assert kaggle.main(args, [], notebook_dir=project.notebooks) == 0
    assert fake.bodies("SaveKernel")[-1]["slug"] == "tester/ai2human-v5-evaluate"
    m = manifest(project)
    assert m["status"] == "completed"
    assert all(e["status"] == "completed" for e in m["notebooks"].values())


def test_follow_an_unknown_run_names_the_pushed_ones(fake, project):
    script_all(fake)
    push(project, "--no-wait", specs=[project.spec(only="eda")])
    with pytest.raises(UserError, match="pushed runs under .*: v5"):
        kaggle.main(parse("--follow", "v9", "--out", str(project.out)), [], notebook_dir=project.notebooks)


def test_a_sweep_pushes_one_set_per_params_file_and_follows_them_together(fake, project):
    second = project.params.with_name("v6.yaml")
    second.write_text(f"dataset_path: {project.data}\nmax_steps: 200\n")
    for run in ("v5", "v6"):
        fake.script(f"ai2human-{run}-finetune", ["RUNNING", "COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK})
    specs = [project.spec(only="finetune"), project.spec(second, only="finetune")]

    assert push(project, "--upload-data", specs=specs) == 0

    saves = fake.bodies("SaveKernel")
    assert [b["slug"] for b in saves] == ["tester/ai2human-v5-finetune", "tester/ai2human-v6-finetune"]
    assert "max_steps = 200" in cells(saves[1])[2]["source"]
    first_status = fake.methods().index("GetKernelSessionStatus")
    assert [i for i, m in enumerate(fake.methods()) if m == "SaveKernel"][-1] < first_status
    assert fake.methods().count("CreateDataset") == 2  # code and data, once each for both runs
    assert manifest(project, "v5")["status"] == manifest(project, "v6")["status"] == "completed"


def test_a_second_push_of_the_same_build_reuses_the_code_data_set(fake, project):
    script_all(fake)
    assert push(project, specs=[project.spec(only="eda")]) == 0
    assert push(project, "--fresh", specs=[project.spec(only="eda")]) == 0
    assert fake.methods().count("CreateDataset") == 1
    assert "CreateDatasetVersion" not in fake.methods()
    assert fake.methods().count("SaveKernel") == 2


def test_pushing_again_resumes_and_refuses_other_parameters(fake, project, capsys):
    script_all(fake)
    assert push(project, specs=[project.spec(only="eda")]) == 0
    assert push(project, specs=[project.spec(only="eda")]) == 0
    assert "completed on Kaggle earlier with this build; not pushed again" in capsys.readouterr().out
    assert fake.methods().count("SaveKernel") == 1
    assert (project.out / "v5" / manifest(project)["notebooks"]["eda"]["html"]).is_file()
    project.params.write_text(f"dataset_path: {project.data}\nmax_steps: 7\n")
    with pytest.raises(UserError, match=r"pushed with other parameters \(max_steps\); pass --fresh"):
        push(project, specs=[project.spec()])


def test_a_data_set_missing_on_kaggle_asks_for_upload_data(fake, project):
    with pytest.raises(UserError, match="tester/ai2human-pairs does not exist.*--upload-data"):
        push(project, specs=[project.spec(only="eda")])
    assert "SaveKernel" not in fake.methods()


# ---------------------------------------------------------------------------- refusing before any network call


def test_dry_run_writes_the_kernel_folders_and_sends_nothing(fake, project, capsys):
    assert push(project, "--dry-run") == 0
    assert fake.calls == []
    out = capsys.readouterr().out
    assert "dry run: nothing was sent to Kaggle" in out
    assert "push tester/ai2human-v5-evaluate (NvidiaTeslaT4, private, after finetune completes, with its output" in out
    run = project.out / "v5"
    assert not (run / "manifest.json").exists()
    for short in ("eda", "finetune", "evaluate"):
        folder = run / "kaggle" / Path(NOTEBOOKS[short]).stem
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["id"] == f"tester/ai2human-v5-{short}"
        assert meta["title"] == f"ai2human v5 {short}"
        assert meta["code_file"] == NOTEBOOKS[short] and (folder / NOTEBOOKS[short]).is_file()
        assert (meta["language"], meta["kernel_type"]) == ("python", "notebook")
        assert meta["is_private"] is True and meta["enable_internet"] is True
        assert meta["enable_gpu"] is (short != "eda")
        assert meta.get("machine_shape") == (None if short == "eda" else "NvidiaTeslaT4")
        assert meta["dataset_sources"] == [f"tester/{CODE_SLUG}", "tester/ai2human-pairs"]
        assert meta["kernel_sources"] == (["tester/ai2human-v5-finetune"] if short == "evaluate" else [])


def test_dry_run_needs_no_credentials(fake, project, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    assert push(project, "--dry-run", specs=[project.spec(only="eda")]) == 0
    meta = json.loads((project.out / "v5/kaggle/01_eda/kernel-metadata.json").read_text())
    assert meta["id"] == "your-kaggle-username/ai2human-v5-eda"
    assert fake.calls == []


def test_public_kernels_and_another_accelerator(fake, project):
    project.params.write_text(f"dataset_path: {project.data}\nkaggle_public: true\nkaggle_accelerator: nvidial4\n")
    assert push(project, "--dry-run", specs=[project.spec(only="finetune")]) == 0
    meta = json.loads((project.out / "v5/kaggle/02_finetune/kernel-metadata.json").read_text())
    assert meta["is_private"] is False and meta["machine_shape"] == "NvidiaL4"


def test_missing_credentials_exit_2_naming_the_three_ways(fake, project, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(UserError) as err:
        push(project)
    message = str(err.value)
    assert err.value.exit_code == 2
    assert "KAGGLE_USERNAME" in message and "kaggle.json" in message and "access_token" in message
    assert fake.calls == [] and not project.out.exists()


def test_credentials_are_found_the_ways_the_client_reads_them(tmp_path):
    home = tmp_path / "home"
    assert kaggle_api.find_credentials({"HOME": str(home)}) is None
    env = {"HOME": str(home), "KAGGLE_USERNAME": "ann", "KAGGLE_KEY": KEY}
    assert kaggle_api.find_credentials(env).method == "environment"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle/access_token").write_text("KGAT_abc\n")
    token = kaggle_api.find_credentials({"HOME": str(home)})
    assert token.method == "access token" and token.username is None
    (home / ".kaggle/kaggle.json").write_text(json.dumps({"username": "bob", "key": KEY}))
    assert kaggle_api.find_credentials({"HOME": str(home)}).username == "bob"


def test_an_access_token_is_checked_with_kaggle_to_learn_the_username(fake, project, monkeypatch):
    fake.token = "KGAT_" + "7" * 32
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", fake.token)
    script_all(fake)
    assert push(project, "--upload-data", specs=[project.spec(only="eda")]) == 0
    assert fake.methods()[0] == "IntrospectToken"
    assert fake.bodies("SaveKernel")[0]["slug"] == "tester/ai2human-v5-eda"


def test_a_p100_is_refused_with_the_reason(fake, project):
    project.params.write_text(f"dataset_path: {project.data}\nkaggle_accelerator: NvidiaTeslaP100\n")
    with pytest.raises(UserError, match="P100 is refused: Kaggle retired the P100"):
        push(project)
    assert fake.calls == [] and not project.out.exists()


def test_bad_values_are_all_reported_before_anything_is_built(fake, project):
    project.params.write_text(
        f"dataset_path: {project.data}\nkaggle_accelerator: TpuV38\nkaggle_dataset: not a ref\n"
        f"run_name: {'x' * 40}\n")
    with pytest.raises(UserError) as err:
        push(project)
    message = str(err.value)
    assert "TpuV38 is refused" in message and "kaggle_dataset" in message and "longer than Kaggle's 50" in message
    assert fake.calls == [] and not project.out.exists()


def test_the_secret_scan_refuses_a_planted_token(fake, project):
    project.data.write_text(project.data.read_text() + f"Call me,{TOKEN_LIKE}\n")
    with pytest.raises(UserError) as err:
        push(project, "--upload-data")
    assert err.value.exit_code == 2
    assert f"{project.data}:3: Hugging Face token" in str(err.value)
    assert fake.calls == []


def test_the_secret_scan_knows_the_credentials_in_the_environment(fake, project, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "local-wandb-secret-for-test")
    project.params.write_text(f"dataset_path: {project.data}\nmodel_name: local-wandb-secret-for-test\n")
    with pytest.raises(UserError, match=r"02_finetune.ipynb:\d+: value of \$WANDB_API_KEY"):
        push(project, "--dry-run")
    assert fake.calls == []


def test_a_local_run_folder_is_not_overwritten(fake, project):
    (project.out / "v5").mkdir(parents=True)
    (project.out / "v5/manifest.json").write_text(json.dumps({"run_name": "v5", "notebooks": {}}))
    with pytest.raises(UserError, match="holds a local run; pass --fresh"):
        push(project, "--dry-run")


# ---------------------------------------------------------------------------- pieces


def test_log_lines_reads_kaggle_logs_whole_or_cut_short(tmp_path):
    entries = [{"stream_name": "stdout", "time": 1, "data": "a\nb\n"}, {"stream_name": "stderr", "time": 2, "data": "c\n"}]
    whole = tmp_path / "whole.log"
    whole.write_text(json.dumps(entries))
    assert kaggle.log_lines(whole) == ["a", "b", "c"]
    cut = tmp_path / "cut.log"
    cut.write_text("[" + json.dumps(entries[0]) + "\n," + json.dumps(entries[1]) + "\n,{\"stream_na")
    assert kaggle.log_lines(cut) == ["a", "b", "c"]


def test_the_setup_cell_does_nothing_off_kaggle(monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    namespace = {"run_dir": "/kaggle/working"}
    exec((params.REPO_ROOT / "kaggle" / "bootstrap.py").read_text(), namespace)
    assert namespace["run_dir"] == "/kaggle/working"
    assert "Not on Kaggle" in capsys.readouterr().out


# ---------------------------------------------------------------------------- the wheel, as pushed


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    """A wheel that satisfies pip's resolver for ``name==version`` and installs no module."""
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}.dist-info/RECORD", "")


@pytest.mark.slow
def test_the_pushed_notebook_installs_the_wheel_in_a_clean_venv_and_runs_its_setup_cell(tmp_path, monkeypatch, wheel_cache):
    """Each real notebook, rendered as a push renders it, run up to its setup cell on a fake /kaggle.

    The venv has no site packages of its own but the wheel, installed by the setup cell's pip
    commands (offline: PIP_NO_INDEX, with stub wheels for the pinned GPU stack). Third-party
    libraries the notebook's setup cell imports (pandas, torch...) are borrowed read-only from the
    test's environment through a .pth path entry placed after the venv's site-packages, so
    ``ai2human`` itself can only come from the wheel.
    """
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    present = [s for s, f in NOTEBOOKS.items() if (NOTEBOOK_DIR / f).is_file()]
    if not present:
        pytest.skip("no notebooks yet")
    monkeypatch.setenv("AI2HUMAN_CACHE", str(wheel_cache))
    code = stage_code(tmp_path / "runs", "tester")
    root = tmp_path / "kaggle"
    code_input = root / "input" / CODE_SLUG
    code_input.mkdir(parents=True)
    for name in (code.wheel, code.marker):
        (code_input / name).write_bytes((code.folder / name).read_bytes())
    data_dir = root / "input" / "ai2human-sample"
    data_dir.mkdir()
    (data_dir / "sample.csv").write_bytes((NOTEBOOK_DIR.parent / "data" / "sample.csv").read_bytes())
    finetune_out = root / "input" / "ai2human-t-finetune"
    (finetune_out / "adapter").mkdir(parents=True)
    (finetune_out / "adapter" / "adapter_config.json").write_text("{}")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpython = venv / "bin" / "python"
    vsite = Path(subprocess.run([str(vpython), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip())
    (vsite / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for pin in gpu_requirements():
        _stub_wheel(stubs, *pin.split("=="))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "kaggle_secrets.py").write_text(
        "class UserSecretsClient:\n"
        "    def get_secret(self, label):\n"
        "        if label == 'HF_TOKEN':\n"
        "            return 'test-hf-value'\n"
        "        raise RuntimeError(label + ' is not attached')\n")
    kernels = tmp_path / "kernels" / "kernels" / "kaggle-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(vpython), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kaggle test", "language": "python"}))
    for name in ("WANDB_API_KEY", "HF_TOKEN", "WANDB_MODE", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    env = {"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_URL_BASE": "https://www.kaggle.com",
           "KAGGLE_DATA_PROXY_URL": "https://dp.kaggle.net", "AI2HUMAN_KAGGLE_ROOT": str(root),
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(stubs), "PYTHONPATH": str(secrets),
           "JUPYTER_PATH": str(tmp_path / "kernels"), "MPLBACKEND": "Agg"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    from ai2human.runner.kaggle.bundle import DataSet

    data = DataSet("tester/ai2human-sample", "ai2human sample", None, "/kaggle/input/ai2human-sample/sample.csv", "other")
    probe = (
        "import ai2human, importlib.metadata, json, os\n"
        "json.dump({'file': ai2human.__file__, 'version': importlib.metadata.version('ai2human'),\n"
        "           'run_dir': str(run_dir), 'dataset_path': dataset_path,\n"
        "           'wandb_mode': os.environ.get('WANDB_MODE'), 'hf': os.environ.get('HF_TOKEN'),\n"
        "           'listing': sorted(os.listdir(run_dir))}, open(os.environ['PROBE'], 'w'))\n")
    for short in present:
        sources = ["tester/ai2human-t-finetune"] if short == "evaluate" else []
        setup = kernel_setup(short, code, data, sources)
        rendered = tmp_path / "rendered" / NOTEBOOKS[short]
        rendered.parent.mkdir(exist_ok=True)
        params = {"run_dir": "/kaggle/working", "dataset_path": data.kaggle_path}
        render_notebook(NOTEBOOK_DIR / NOTEBOOKS[short], rendered, params, setup)
        nb = nbformat.read(rendered, as_version=4)
        at = next(i for i, c in enumerate(nb.cells) if "kaggle-setup" in c.metadata.get("tags", []))
        setup_cell = next(i for i in range(at + 1, len(nb.cells)) if nb.cells[i].cell_type == "code")
        nb.cells = nb.cells[: setup_cell + 1] + [nbformat.v4.new_code_cell(probe)]
        result = tmp_path / f"{short}.json"
        monkeypatch.setenv("PROBE", str(result))
        nbclient.NotebookClient(nb, kernel_name="kaggle-test", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()

        seen = json.loads(result.read_text())
        assert Path(seen["file"]).is_relative_to(venv), f"{short}: ai2human came from {seen['file']}, not the wheel"
        assert seen["run_dir"] == str(root / "working")
        assert seen["dataset_path"] == str(data_dir / "sample.csv")
        assert seen["wandb_mode"] == "offline" and seen["hf"] == "test-hf-value"
        if short == "evaluate":
            assert "adapter" in seen["listing"]
        wanted = {p.split("==")[0].replace("_", "-") for p in setup["pip"]}
        listed = subprocess.run([str(vpython), "-m", "pip", "list", "--path", str(vsite), "--format", "json"],
                                capture_output=True, text=True, check=True).stdout
        installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
        assert {"ai2human"} | wanted <= installed
