"""The data is checked before a push (the dry run too): loaded as the notebooks will load it, with
the fix named when it would fail inside a kernel, and a warning for the synthetic sample."""

from __future__ import annotations

import pytest

from ai2human.errors import UserError
from ai2human.runner.params import REPO_ROOT, resolve_run
from conftest import run_cli
from kaggle_fixtures import fake, project, push, wheel_cache  # noqa: F401  (fixtures)


def test_wrong_columns_stop_the_dry_run_naming_the_columns_and_the_fix(fake, project):
    project.data.write_text(project.data.read_text().replace("human,LLM", "text_human,text_ai", 1))
    with pytest.raises(UserError) as err:
        push(project, "--dry-run")
    message = str(err.value)
    assert err.value.exit_code == 2
    assert "columns found: text_human, text_ai" in message
    assert "--set human_column=text_human ai_column=text_ai" in message
    assert fake.calls == [] and not project.out.exists()


def test_an_unloadable_file_stops_the_push_with_load_pairs_message(fake, project):
    project.data.write_text("human,LLM\n" + "a,b\n" * 3)  # too few rows once duplicates are dropped
    with pytest.raises(UserError, match=r"usable rows"):
        push(project, "--dry-run")
    assert fake.calls == []


def test_the_plan_counts_rows_and_empty_rows(fake, project, capsys):
    project.data.write_text(project.data.read_text() + "only a human text,\n")
    assert push(project, "--dry-run") == 0
    assert f"v5 reads {project.data}: 13 rows, 1 with an empty text, 0 duplicates, 12 kept" in capsys.readouterr().out


def test_the_synthetic_sample_gives_a_warning_naming_set_dataset_path(fake, project, capsys):
    project.params.write_text(f"dataset_path: {REPO_ROOT / 'data' / 'sample.csv'}\n")
    spec = resolve_run(project.params, only="eda", notebook_dir=project.notebooks)
    assert push(project, "--dry-run", specs=[spec]) == 0
    out = capsys.readouterr().out
    assert "warning: dataset_path is the bundled synthetic sample (data/sample.csv)" in out
    assert "--set dataset_path=" in out


def test_the_cli_dry_run_of_v5_with_wrong_columns_exits_2(tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("text_human,text_ai\n" + "".join(f"h {i},a {i}\n" for i in range(12)))
    proc = run_cli("params/v5.yaml", "--kaggle", "--dry-run", "--out", str(tmp_path / "runs"),
                   "--set", f"dataset_path={data}",
                   env={"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_CONFIG_DIR": str(tmp_path / "nokaggle")})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "columns found: text_human, text_ai" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
