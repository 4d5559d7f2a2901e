"""The runner as a user types it: bad input exits 2 with one clear message and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_cli


def _params(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _assert_refused(proc, out: Path, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir()), "a refused run must not create a run folder"


@pytest.mark.parametrize(
    "text, extra, needles",
    [
        ("learning_rat: 1e-4\n", [], ["learning_rat: unknown parameter", "did you mean 'learning_rate'"]),
        ('max_steps: "ten"\n', [], ["max_steps: expected an integer, got 'ten'"]),
        ("max_steps: 5\nlearning_rate: : 1\n", [], ["line 2", "YAML syntax error"]),
        ("run_name: ../x\n", [], ["run_name: '../x' is not a safe folder name"]),
        ("max_steps: 5\n", ["--set", "max_stepz=3"], ["max_stepz: unknown parameter", "did you mean 'max_steps'"]),
        ("max_steps: 5\n", ["--set", "dataset_path=no/such/file.csv"], ["dataset_path:", "does not exist"]),
    ],
    ids=["unknown-key", "wrong-type", "yaml-syntax", "unsafe-run-name", "set-unknown-key", "missing-dataset"],
)
def test_bad_params_exit_2_with_a_message_and_no_run_folder(tmp_path, text, extra, needles):
    out = tmp_path / "runs"
    proc = run_cli(str(_params(tmp_path, text)), "--out", str(out), *extra)
    _assert_refused(proc, out, *needles)


def test_missing_params_file(tmp_path):
    out = tmp_path / "runs"
    proc = run_cli(str(tmp_path / "nope.yaml"), "--out", str(out))
    _assert_refused(proc, out, "not found", "demo.yaml")


def test_no_params_file_prints_usage_and_lists_the_files_with_whole_descriptions():
    import yaml

    proc = run_cli()
    assert proc.returncode == 2
    assert "usage: run.py" in proc.stderr
    for name in ("demo", "v1", "v5"):
        description = yaml.safe_load((REPO / "params" / f"{name}.yaml").read_text())["description"]
        line = next(line for line in proc.stderr.splitlines() if f"params/{name}.yaml" in line)
        assert line.rstrip().endswith(description), line


@pytest.mark.parametrize("item", ["description=hf_" + "aB3dE5gH7jK9" * 3, "wandb_project=ghp_" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J4i3H2"])
def test_a_secret_as_a_value_is_refused_before_anything_is_written(tmp_path, item):
    out = tmp_path / "runs"
    proc = run_cli("params/demo.yaml", "--out", str(out), "--set", item)
    _assert_refused(proc, out, "looks like a secret")
    assert item.split("=", 1)[1] not in proc.stderr


@pytest.mark.parametrize("text, needle", [
    ("a: &a [1, 2]\nb: *a\n", "aliases (*a) are not allowed"),
    ("max_steps: 5\nmax_steps: 6\n", "duplicate key 'max_steps' (lines 1 and 2)"),
], ids=["alias", "duplicate"])
def test_hostile_yaml_exits_2_with_one_line(tmp_path, text, needle):
    out = tmp_path / "runs"
    proc = run_cli(str(_params(tmp_path, text)), "--out", str(out))
    _assert_refused(proc, out, needle)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_wrong_columns_are_found_before_a_notebook_starts(tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("text,label\n" + "a,b\n" * 20)
    out = tmp_path / "runs"
    proc = run_cli("params/demo.yaml", "--out", str(out), "--set", f"dataset_path={data}")
    _assert_refused(proc, out, "columns present: text, label", "--set human_column=... ai_column=...")


def test_a_7b_model_on_a_cpu_machine_points_to_kaggle(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "runs"
    proc = run_cli(str(REPO / "params" / "v5.yaml"), "--out", str(out))
    _assert_refused(proc, out, "Qwen2.5-7B", "--kaggle", "--force")


def test_help_is_instant_and_lists_the_options():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for option in ("--set", "--only", "--out", "--fresh", "--force"):
        assert option in proc.stdout


def test_kaggle_dry_run_of_v5_writes_the_kernel_folders(tmp_path):
    import json

    out = tmp_path / "runs"
    proc = run_cli("params/v5.yaml", "--kaggle", "--dry-run", "--out", str(out),
                   env={"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_CONFIG_DIR": str(tmp_path / "nokaggle")})
    assert proc.returncode == 0, proc.stderr
    assert "nothing was sent to Kaggle" in proc.stdout
    for short, nb in (("eda", "01_eda"), ("finetune", "02_finetune"), ("evaluate", "03_evaluate")):
        meta = json.loads((out / "v5" / "kaggle" / nb / "kernel-metadata.json").read_text())
        assert meta["code_file"] == f"{nb}.ipynb" and meta["kernel_type"] == "notebook" and meta["is_private"] is True
        assert meta["id"].endswith(f"ai2human-v5-{short}")
        assert meta["enable_gpu"] is (short != "eda")
    assert json.loads((out / "v5" / "kaggle" / "03_evaluate" / "kernel-metadata.json").read_text())["kernel_sources"]
