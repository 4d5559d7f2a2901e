"""A run folder survives what goes wrong around it: a second runner, a changed dataset, a corrupt
manifest, a full disk, SIGTERM, a reader that goes away. Toy notebooks keep each case to seconds."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ai2human.errors import ParamsError, UserError
from ai2human.rundir import KERNEL_LOG, LOCK, SPLIT
from ai2human.runner.execute import execute_run
from ai2human.runner.params import NOTEBOOKS, resolve_run
from conftest import REPO
from test_runs import _notebook  # the toy-notebook writer both files use

pytestmark = pytest.mark.slow  # every case runs toy notebooks through real kernels

PARAMS = 'run_dir = ""  # out\nsteps = 3  # n\n'


@pytest.fixture
def toy(tmp_path):
    """Three quick notebooks; finetune fails while run_dir/../FAIL exists and sleeps while ../SLOW does."""
    d = tmp_path / "notebooks"
    d.mkdir()
    _notebook(d / NOTEBOOKS["eda"], PARAMS, "print('eda says hello')")
    _notebook(d / NOTEBOOKS["finetune"], PARAMS,
              "import os, time\nprint('training', steps)",
              "while os.path.exists(os.path.join(run_dir, '..', 'SLOW')):\n    time.sleep(0.2)",
              "if os.path.exists(os.path.join(run_dir, '..', 'FAIL')):\n    raise RuntimeError('loss is nan')",
              "open(f'{run_dir}/adapter.txt', 'w').write('ok')")
    _notebook(d / NOTEBOOKS["evaluate"], 'run_dir = ""  # out\n', "assert open(f'{run_dir}/adapter.txt').read() == 'ok'")
    params = tmp_path / "toy.yaml"
    params.write_text("steps: 5\n")
    out = tmp_path / "runs"
    out.mkdir()
    return d, params, out


def _manifest(out: Path) -> dict:
    return json.loads((out / "toy" / "manifest.json").read_text())


def _run_in_subprocess(nb_dir: Path, params: Path, out: Path, **popen) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from ai2human.runner.execute import execute_run
        from ai2human.runner.params import resolve_run
        spec = resolve_run({str(params)!r}, notebook_dir=Path({str(nb_dir)!r}))
        sys.exit(execute_run(spec, Path({str(out)!r}), notebook_dir=Path({str(nb_dir)!r})))
    """)
    return subprocess.Popen([sys.executable, "-c", code], text=True, **popen)


def _wait_for(predicate, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not predicate():
        assert time.time() < end, "timed out"
        time.sleep(0.2)


def _finetune_running(out: Path) -> bool:
    try:
        return _manifest(out)["notebooks"]["finetune"]["status"] == "running"
    except (OSError, ValueError, KeyError):
        return False


def test_a_second_runner_on_the_same_folder_is_refused_naming_the_first(toy):
    nb_dir, params, out = toy
    (out / "SLOW").write_text("")
    first = _run_in_subprocess(nb_dir, params, out)
    try:
        _wait_for(lambda: _finetune_running(out))
        with pytest.raises(UserError, match=rf"in use by another runner \(PID {first.pid}\)") as err:
            execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir)
        assert err.value.exit_code == 2
        assert len(_manifest(out)["invocations"]) == 1  # the second one recorded nothing
    finally:
        (out / "SLOW").unlink()
        assert first.wait(timeout=120) == 0
    assert _manifest(out)["status"] == "completed"


def test_a_stale_lock_of_a_dead_runner_is_taken_over(toy):
    nb_dir, params, out = toy
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / "toy").mkdir()
    (out / "toy" / LOCK).write_text(dead.stdout)
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    assert _manifest(out)["status"] == "completed"


def _data_toy(toy, tmp_path):
    """The toy run reading a dataset, as fine-tuning and evaluation do."""
    nb_dir, params, out = toy
    data_params = 'run_dir = ""  # out\ndataset_path = ""  # data\nval_size = 0.2  # held out\nsplit_seed = 42  # shuffle\n'
    for short in NOTEBOOKS:
        _notebook(nb_dir / NOTEBOOKS[short], data_params, "print(dataset_path)")
    data = tmp_path / "pairs.csv"
    shutil.copy(REPO / "data" / "sample.csv", data)
    params.write_text(f"dataset_path: {data}\n")
    return nb_dir, params, out, data


def test_a_changed_dataset_is_refused_until_fresh(toy, tmp_path):
    nb_dir, params, out, data = _data_toy(toy, tmp_path)
    spec = resolve_run(params, notebook_dir=nb_dir)
    assert execute_run(spec, out, notebook_dir=nb_dir) == 0
    split = json.loads((out / "toy" / SPLIT).read_text())
    assert set(split["rows"]["train"]).isdisjoint(split["rows"]["validation"]) and len(split["rows"]["validation"]) > 0
    assert _manifest(out)["dataset"]["sha256"] and _manifest(out)["split_sha256"] == split["sha256"]

    from ai2human.data.pairs import load_pairs

    data.write_text(data.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")  # re-saved: other bytes, same rows
    assert execute_run(spec, out, notebook_dir=nb_dir) == 0
    pairs, _ = load_pairs(data)  # the same pairs, shuffled: the split would put trained rows in validation
    pairs.rename(columns={"ai": "LLM"})[["human", "LLM"]].sample(frac=1, random_state=0).to_csv(data, index=False)
    with pytest.raises(UserError, match="dataset .* changed since this run started.*--fresh"):
        execute_run(spec, out, notebook_dir=nb_dir)
    assert _manifest(out)["status"] == "completed" and len(_manifest(out)["invocations"]) == 2
    assert execute_run(spec, out, fresh=True, notebook_dir=nb_dir) == 0
    assert json.loads((out / "toy" / SPLIT).read_text())["sha256"] != split["sha256"]


def test_data_errors_are_found_before_a_notebook_starts(toy, tmp_path):
    nb_dir, params, out, data = _data_toy(toy, tmp_path)
    data.write_text("text,label\n" + "a,b\n" * 20)
    with pytest.raises(UserError, match=r"columns present: text, label.*--set human_column=\.\.\. ai_column=\.\.\."):
        execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("corrupt", ["cut", "not-a-manifest", "folder"])
def test_a_corrupt_manifest_needs_fresh_and_fresh_always_recovers(toy, corrupt):
    nb_dir, params, out = toy
    spec = resolve_run(params, notebook_dir=nb_dir)
    assert execute_run(spec, out, notebook_dir=nb_dir) == 0
    manifest = out / "toy" / "manifest.json"
    if corrupt == "cut":
        manifest.write_text('{"run_name": "toy", "notebo')
    elif corrupt == "not-a-manifest":
        manifest.write_text("[1, 2]")
    else:
        manifest.unlink()
        manifest.mkdir()
    with pytest.raises(UserError, match=r"manifest.json is (unreadable|not a run manifest|not a file).*pass --fresh"):
        execute_run(spec, out, notebook_dir=nb_dir)
    assert execute_run(spec, out, fresh=True, notebook_dir=nb_dir) == 0
    assert _manifest(out)["status"] == "completed" and len(_manifest(out)["invocations"]) == 1


def test_a_full_disk_marks_the_run_failed_and_sets_the_cut_notebook_aside(toy, monkeypatch):
    import papermill

    nb_dir, params, out = toy

    def disk_full(input_path, output_path, **kwargs):
        if "02_finetune" not in output_path:
            return real(input_path, output_path, **kwargs)
        Path(output_path).write_text('{"cells": [{"cell_type": "co')  # cut off mid-write
        raise OSError(errno.ENOSPC, "No space left on device", output_path)

    real = papermill.execute_notebook
    monkeypatch.setattr(papermill, "execute_notebook", disk_full)
    with pytest.raises(UserError, match=r"^disk full \(No space left on device\) while writing .*02_finetune.ipynb; free some space"):
        execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir)
    manifest = _manifest(out)
    assert manifest["status"] == "failed" and "disk full" in manifest["cause"]
    assert manifest["notebooks"]["eda"]["status"] == "completed"
    assert manifest["notebooks"]["finetune"]["status"] == "failed"
    assert manifest["notebooks"]["finetune"]["partial_notebook"] == "02_finetune.ipynb.partial"
    assert not (out / "toy" / "02_finetune.ipynb").exists()


def test_an_html_copy_that_cannot_be_rendered_does_not_stop_the_run(toy, monkeypatch, capsys):
    """nbconvert without its templates (a bare install) must not fail notebooks that completed."""
    from ai2human.runner import execute

    nb_dir, params, out = toy

    def no_templates(path):
        raise ValueError("No template sub-directory with name 'lab' found in the following paths:\n\t/x")

    monkeypatch.setattr(execute, "render_html", no_templates)
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    manifest = _manifest(out)
    assert manifest["status"] == "completed"
    assert all(e["status"] == "completed" and "html" not in e for e in manifest["notebooks"].values())
    assert "No template sub-directory" in manifest["notebooks"]["evaluate"]["html_error"]
    assert "HTML copy not written" in capsys.readouterr().out


def test_sigterm_leaves_the_manifest_interrupted_and_the_next_call_resumes(toy):
    nb_dir, params, out = toy
    (out / "SLOW").write_text("")
    proc = _run_in_subprocess(nb_dir, params, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: _finetune_running(out))
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    manifest = _manifest(out)
    assert manifest["status"] == "interrupted" and manifest["stopped_by"] == "terminated (SIGTERM)"
    assert manifest["notebooks"]["finetune"]["status"] == "interrupted"
    (out / "SLOW").unlink()
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0


def test_a_reader_that_goes_away_does_not_stop_or_garble_the_run(toy):
    nb_dir, params, out = toy
    proc = _run_in_subprocess(nb_dir, params, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # `run.py | head -1`
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert _manifest(out)["status"] == "completed"


def test_stream_prints_the_cells_output_and_the_console_has_no_kernel_noise(toy, capfd):
    nb_dir, params, out = toy
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, stream=True, notebook_dir=nb_dir) == 0
    captured = capfd.readouterr()
    assert "eda says hello" in captured.out and "training 5" in captured.out
    assert "without encryption" not in captured.err + captured.out


def test_only_a_notebook_whose_input_is_missing_says_what_is_missing(toy):
    nb_dir, params, out = toy
    with pytest.raises(UserError, match=r"cannot run evaluate yet: finetune has not run in this folder.*--only finetune,evaluate"):
        execute_run(resolve_run(params, only="evaluate", notebook_dir=nb_dir), out, notebook_dir=nb_dir)
    assert list(out.iterdir()) == []


def test_fresh_with_only_a_dependent_notebook_is_refused_before_deleting_anything(toy):
    nb_dir, params, out = toy
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    with pytest.raises(UserError, match=r"--fresh deletes finetune's results, which evaluate needs.*--only finetune,evaluate"):
        execute_run(resolve_run(params, only="evaluate", notebook_dir=nb_dir), out, fresh=True, notebook_dir=nb_dir)
    assert (out / "toy" / "adapter.txt").is_file() and _manifest(out)["status"] == "completed"


def test_only_finetune_on_a_partly_done_run_says_what_is_left(toy, capsys):
    nb_dir, params, out = toy
    (out / "FAIL").write_text("")
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 1
    (out / "FAIL").unlink()
    capsys.readouterr()
    assert execute_run(resolve_run(params, only="finetune", notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    printed = capsys.readouterr().out
    assert "run toy: incomplete" in printed and "still to run in this folder: evaluate (skipped)" in printed
    assert _manifest(out)["status"] == "incomplete"
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    assert _manifest(out)["status"] == "completed"


def test_rerun_with_other_parameters_says_how_to_start_a_new_run_or_overwrite(toy):
    nb_dir, params, out = toy
    assert execute_run(resolve_run(params, notebook_dir=nb_dir), out, notebook_dir=nb_dir) == 0
    with pytest.raises(ParamsError, match=r"steps: 5 -> 9.*--set run_name=NAME\) to start a new run.*--fresh to delete it"):
        execute_run(resolve_run(params, ["steps=9"], notebook_dir=nb_dir), out, notebook_dir=nb_dir)


def test_ctrl_c_stops_cleanly_and_keeps_the_kernel_noise_off_the_console(toy):
    nb_dir, params, out = toy
    (out / "SLOW").write_text("")
    proc = _run_in_subprocess(nb_dir, params, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(lambda: _finetune_running(out))
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    for noise in ("Traceback", "ZMQError", "IPKernelApp", "without encryption"):
        assert noise not in stderr, stderr
    assert _manifest(out)["status"] == "interrupted"
    assert (out / "toy" / KERNEL_LOG).is_file()  # where the kernels' own log lines went
