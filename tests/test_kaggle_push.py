"""`--kaggle`: render, push, follow and fetch, against a fake Kaggle API on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai2human.errors import UserError
from ai2human.runner.kaggle import api as kaggle_api
from ai2human.runner.kaggle import auth
from ai2human.runner.kaggle import workflow as kaggle
from ai2human.runner.kaggle.fetching import log_lines
from ai2human.runner.kaggle.wheel import CODE_SLUG
from ai2human.runner.params import NOTEBOOKS
from kaggle_fixtures import (  # noqa: F401  (fixtures)
    KEY, OK_NOTEBOOK, SETUP, TOKEN_LIKE, cells, executed_nb, fake, manifest, parse, project, push, script_all,
    wheel_cache,
)


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

    # the pushed notebook: the setup cell first (one, filled for this kernel), then the parameters
    # with papermill's injected cell, then the notebook's own cells
    pushed = cells(finetune)
    code_cells = [c for c in pushed if c["cell_type"] == "code"]
    setup = code_cells[0]
    assert setup["metadata"]["tags"] == ["ai2human-setup"]
    assert sum("_ai2human_setup" in c["source"] for c in pushed) == 1  # never a second install cell
    injected = next(i for i, c in enumerate(pushed) if "injected-parameters" in c["metadata"].get("tags", []))
    assert 'run_dir = "/kaggle/working"' in pushed[injected]["source"]
    assert 'dataset_path = "/kaggle/input/ai2human-pairs/pairs.csv"' in pushed[injected]["source"]
    assert "max_steps = 100" in pushed[injected]["source"]
    assert pushed[injected + 1]["source"] == SETUP
    assert "'extras': ['gpu']," in setup["source"]  # pyproject's pinned GPU stack
    assert "'extras': []," in [c for c in cells(eda) if c["cell_type"] == "code"][0]["source"]  # not for the EDA

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
    assert not (run / "kaggle/02_finetune/output/checkpoints/checkpoint-20/optimizer.pt").exists()  # stays on Kaggle
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
    failed_nb = executed_nb(
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
    assert "max_steps = 200" in cells(saves[1])[3]["source"]  # the injected cell, after setup and parameters
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
    assert "completed on Kaggle earlier; not pushed again (--repush runs it again)" in capsys.readouterr().out
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
    assert auth.find_credentials({"HOME": str(home)}) is None
    env = {"HOME": str(home), "KAGGLE_USERNAME": "ann", "KAGGLE_KEY": KEY}
    assert auth.find_credentials(env).method == "environment"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle/access_token").write_text("KGAT_abc\n")
    token = auth.find_credentials({"HOME": str(home)})
    assert token.method == "access token" and token.username is None
    (home / ".kaggle/kaggle.json").write_text(json.dumps({"username": "bob", "key": KEY}))
    assert auth.find_credentials({"HOME": str(home)}).username == "bob"


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
    assert f"{project.data}:14: Hugging Face token" in str(err.value)
    assert fake.calls == []


def test_the_secret_scan_knows_the_credentials_in_the_environment(fake, project, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "local-wandb-secret-for-test")
    # (a secret as a parameter value is refused earlier, by the params check)
    finetune = project.notebooks / NOTEBOOKS["finetune"]
    finetune.write_text(finetune.read_text().replace("print('train')", "print('local-wandb-secret-for-test')"))
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
    assert log_lines(whole) == ["a", "b", "c"]
    cut = tmp_path / "cut.log"
    cut.write_text("[" + json.dumps(entries[0]) + "\n," + json.dumps(entries[1]) + "\n,{\"stream_na")
    assert log_lines(cut) == ["a", "b", "c"]
