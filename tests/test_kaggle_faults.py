"""Kaggle's failure cases (issue 16), each against the fake server: nothing fetched is lost, nothing
completed is redone unasked, and every fault ends in a bounded wait and one clear line."""

from __future__ import annotations

import json
import os
import socket

import pytest

from ai2human.errors import UserError
from ai2human.runner.kaggle import api as kaggle_api
from ai2human.runner.kaggle import fetching, wheel
from ai2human.runner.kaggle import workflow as kaggle
from ai2human.runner.kaggle.api import Client
from kaggle_fixtures import (  # noqa: F401  (fixtures)
    OK_NOTEBOOK, executed_nb, fake, manifest, parse, project, push, script_all, wheel_cache,
)

FAILED_NB = executed_nb(("trainer.train()", [{"output_type": "error", "ename": "RuntimeError", "evalue": "boom",
                                              "traceback": []}]))



def _new_build(monkeypatch, build: str = "c0dec4a7e000") -> None:
    """As if a file under src/ai2human had been edited: the same wheel, another build hash."""
    original = wheel.build_wheel
    monkeypatch.setattr(wheel, "build_wheel", lambda root=wheel.REPO_ROOT: (original(root)[0], build))


@pytest.mark.slow  # several pushes and fetches against the fake server
def test_a_repush_that_fails_keeps_the_fetched_outputs_and_their_versions_apart(fake, project, monkeypatch, capsys):
    fake.add_dataset("tester/ai2human-pairs", {"pairs.csv": b"human,LLM\n"})
    fake.script("ai2human-v5-finetune", ["COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK, "adapter/adapter_config.json": b"v1"})
    fake.script("ai2human-v5-evaluate", ["COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK, "eval_metrics.json": b"v1"})
    spec = project.spec(only="finetune,evaluate")
    assert push(project, specs=[spec]) == 0
    run = project.out / "v5" / "kaggle"

    # the code changes: a completed run is not pushed again without --repush
    _new_build(monkeypatch)
    capsys.readouterr()
    assert push(project, specs=[spec]) == 0
    out = capsys.readouterr().out
    assert "completed on Kaggle earlier; not pushed again (the code changed since" in out and "--repush" in out
    assert fake.methods().count("SaveKernel") == 2

    # --repush: the new fine-tuning version fails; everything fetched before stays where it was
    fake.script("ai2human-v5-finetune", ["RUNNING", "ERROR"], {"__notebook__.ipynb": FAILED_NB}, failure="boom")
    assert push(project, "--repush", specs=[spec]) == 1
    assert (run / "02_finetune/output/adapter/adapter_config.json").read_bytes() == b"v1"
    assert (run / "02_finetune/versions/2/02_finetune.ipynb").is_file()  # the failed version, apart
    assert (run / "03_evaluate/output/eval_metrics.json").read_bytes() == b"v1"
    assert not list(run.rglob("*.partial"))
    m = manifest(project)
    finetune, evaluate = m["notebooks"]["finetune"], m["notebooks"]["evaluate"]
    assert finetune["status"] == "failed" and finetune["output_dir"] == "kaggle/02_finetune/versions/2"
    assert finetune["previous"]["output_dir"] == "kaggle/02_finetune/output" and finetune["previous"]["version"] == 1
    assert evaluate["status"] == "skipped" and evaluate["previous"]["output_dir"] == "kaggle/03_evaluate/output"
    assert "the earlier version's output is kept in" in capsys.readouterr().out

    # a third version completes: it becomes output/, the first one moves to versions/1/
    fake.script("ai2human-v5-finetune", ["COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK, "adapter/adapter_config.json": b"v3"})
    assert push(project, specs=[spec]) == 0
    assert (run / "02_finetune/output/adapter/adapter_config.json").read_bytes() == b"v3"
    assert (run / "02_finetune/versions/1/adapter/adapter_config.json").read_bytes() == b"v1"
    assert (run / "02_finetune/versions/2/02_finetune.ipynb").is_file()


def test_a_download_that_fails_forever_stops_with_a_clear_message(fake, project, capsys):
    script_all(fake)
    fake.fail("ListKernelSessionOutput", 500, times=1000)
    assert push(project, specs=[project.spec(only="finetune,evaluate")]) == 1
    out = capsys.readouterr().out
    tries = fetching.MAX_FETCH_TRIES
    assert f"v5/finetune: gave up downloading the output after {tries} tries" in out
    assert "stays on Kaggle at http://localhost/code/tester/ai2human-v5-finetune" in out
    assert fake.methods().count("ListKernelSessionOutput") == tries * kaggle_api.MAX_ATTEMPTS
    assert "v5/evaluate: skipped because finetune did not complete" in out
    assert not (project.out / "v5/kaggle/02_finetune/output").exists()
    assert not list((project.out / "v5").rglob("*.partial"))
    assert manifest(project)["notebooks"]["finetune"]["fetch_failed"] is True

    # the service is back: a later --follow downloads it and pushes what waited for it
    fake.faults.clear()
    assert kaggle.main(parse("--follow", "v5", "--out", str(project.out), "--poll-interval", "0"), [],
                       notebook_dir=project.notebooks) == 0
    assert (project.out / "v5/kaggle/02_finetune/output/02_finetune.ipynb").is_file()
    assert fake.bodies("SaveKernel")[-1]["slug"] == "tester/ai2human-v5-evaluate"
    assert manifest(project)["status"] == "completed"


def test_a_transient_404_on_status_is_retried(fake, project, capsys):
    script_all(fake)
    fake.fail("GetKernelSessionStatus", 404, times=2)
    assert push(project, specs=[project.spec(only="eda")]) == 0
    assert "status of tester/ai2human-v5-eda: HTTP 404; retrying" in capsys.readouterr().out
    assert manifest(project)["notebooks"]["eda"]["status"] == "completed"


def test_a_long_retry_after_is_capped_and_says_so(fake):
    fake.add_dataset("tester/some-data", {"a.csv": b"x"})
    fake.fail("GetDatasetStatus", 429, headers={"Retry-After": "3600"})
    logs, slept = [], []
    client = Client(log=logs.append, sleep=slept.append).connect()
    assert client.dataset_status("tester/some-data") == "ready"
    assert slept == [kaggle_api.RETRY_MAX_S]
    assert f"Kaggle asked to wait 3600 s (capped at {kaggle_api.RETRY_MAX_S:.0f} s)" in logs[0]


def test_an_unreachable_server_is_one_line_and_exit_2(fake, project, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, dead)
    with pytest.raises(UserError) as err:
        push(project, specs=[project.spec(only="eda")])
    message = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in message
    assert "cannot reach Kaggle (Connection refused)" in message and "run the same command again" in message
    assert len(message) < 400


def test_a_403_on_push_says_what_kaggle_said_and_the_likely_causes(fake, project):
    script_all(fake)
    fake.fail("SaveKernel", 403)
    with pytest.raises(UserError) as err:
        push(project, specs=[project.spec(only="finetune")])
    message = str(err.value)
    assert err.value.exit_code == 2
    assert "Kaggle refused the push (HTTP 403: fake 403)" in message
    assert "phone-verified" in message and "GPU quota" in message


def test_a_corrupt_manifest_is_exit_2_and_fresh_recovers(fake, project):
    script_all(fake)
    assert push(project, specs=[project.spec(only="eda")]) == 0
    (project.out / "v5" / "manifest.json").write_text('{"run_name": "v5", "notebo')
    with pytest.raises(UserError, match="unreadable.*--fresh"):
        push(project, specs=[project.spec(only="eda")])
    with pytest.raises(UserError, match="unreadable"):
        kaggle.main(parse("--follow", "v5", "--out", str(project.out)), [], notebook_dir=project.notebooks)
    assert push(project, "--fresh", specs=[project.spec(only="eda")]) == 0
    assert json.loads((project.out / "v5" / "manifest.json").read_text())["status"] == "completed"


def test_a_second_runner_on_the_same_run_is_refused_naming_the_first(fake, project):
    from ai2human.runner.lock import RunLock

    script_all(fake)
    assert push(project, "--no-wait", specs=[project.spec(only="eda")]) == 0
    with RunLock(project.out / "v5"):
        with pytest.raises(UserError) as err:
            kaggle.main(parse("--follow", "v5", "--out", str(project.out)), [], notebook_dir=project.notebooks)
    assert err.value.exit_code == 2 and f"PID {os.getpid()}" in str(err.value)
    assert "GetKernelSessionStatus" not in fake.methods()
