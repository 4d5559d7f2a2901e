"""Params files: every problem found before anything runs, with a message that says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai2human.errors import ParamsError
from ai2human.runner.params import NOTEBOOKS, check_type, declared_parameters, parse_set, read_parameters, resolve_run
from ai2human.runner.reference import README_END, README_START, reference_markdown

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, source: str) -> None:
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source, "outputs": [], "execution_count": None}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture
def nb_dir(tmp_path) -> Path:
    """Three tiny notebooks standing in for the real ones."""
    d = tmp_path / "notebooks"
    d.mkdir()
    _notebook(d / NOTEBOOKS["eda"], 'run_dir = ""  # where artifacts go\nmax_seq_length = 2048  # longest example kept\ntop_n_words = 20  # bars per chart\n')
    _notebook(d / NOTEBOOKS["finetune"], 'run_dir = ""  # where artifacts go\nmax_seq_length = 2048  # longest example kept\n'
              'learning_rate = 5e-5  # step size\nmax_steps = 20  # optimizer steps\nload_in_4bit = True  # QLoRA\noptim = "paged_adamw_32bit"  # optimizer\n')
    _notebook(d / NOTEBOOKS["evaluate"], 'run_dir = ""  # where artifacts go\neval_samples = 100  # rows scored\n')
    return d


def _params(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_parameters_gives_defaults_types_and_comments(nb_dir):
    params = read_parameters(nb_dir / NOTEBOOKS["finetune"])
    assert list(params) == ["run_dir", "max_seq_length", "learning_rate", "max_steps", "load_in_4bit", "optim"]
    assert params["learning_rate"].default == 5e-5 and params["learning_rate"].type is float
    assert params["max_steps"].help == "optimizer steps"


def test_shared_parameter_is_declared_by_every_notebook_that_uses_it(nb_dir):
    declared = declared_parameters(None, nb_dir)
    assert declared["max_seq_length"].notebooks == ["eda", "finetune"]
    assert declared["run_dir"].notebooks == ["eda", "finetune", "evaluate"]


def test_same_name_with_different_defaults_is_an_error(nb_dir):
    _notebook(nb_dir / NOTEBOOKS["evaluate"], "max_seq_length = 1024  # clash\n")
    with pytest.raises(ParamsError, match="max_seq_length has default"):
        declared_parameters(None, nb_dir)


@pytest.mark.parametrize(
    "value, expected, ok",
    [(3, int, True), (True, int, False), (3, float, True), (3.5, int, False), ("ten", int, False),
     (False, bool, True), (0, bool, False), ("x", str, True), (1, str, False)],
)
def test_check_type(value, expected, ok):
    assert (check_type("k", value, expected) is None) is ok


def test_set_values_are_read_as_yaml():
    assert parse_set("max_steps=20") == ("max_steps", 20)
    assert parse_set("learning_rate=1e-4") == ("learning_rate", 1e-4)
    assert parse_set("load_in_4bit=false") == ("load_in_4bit", False)
    assert parse_set("dataset_path=data/x.csv") == ("dataset_path", "data/x.csv")


def test_valid_file_fills_defaults_and_converts_int_to_float(tmp_path, nb_dir):
    spec = resolve_run(_params(tmp_path, "learning_rate: 1\nmax_steps: 5\n"), notebook_dir=nb_dir)
    assert spec.run_name == "exp"
    assert spec.params["learning_rate"] == 1.0 and isinstance(spec.params["learning_rate"], float)
    assert spec.params["max_steps"] == 5 and spec.params["eval_samples"] == 100
    assert spec.overrides == {"learning_rate": 1.0, "max_steps": 5}
    assert spec.notebook_params("evaluate") == {"run_dir": "", "eval_samples": 100}


def test_unknown_key_suggests_the_closest_parameter(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match="learning_rat: unknown parameter; did you mean 'learning_rate'"):
        resolve_run(_params(tmp_path, "learning_rat: 1e-4\n"), notebook_dir=nb_dir)


def test_wrong_type_names_the_expected_type(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match=r"max_steps: expected an integer, got 'ten'"):
        resolve_run(_params(tmp_path, 'max_steps: "ten"\n'), notebook_dir=nb_dir)


def test_yaml_syntax_error_gives_the_line(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match=r"line 2.*YAML syntax error"):
        resolve_run(_params(tmp_path, "max_steps: 5\nlearning_rate: : 1e-4\n"), notebook_dir=nb_dir)


def test_missing_file_lists_the_files_there_are(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match=r"not found; files in params/: .*demo\.yaml"):
        resolve_run(tmp_path / "nope.yaml", notebook_dir=nb_dir)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 101])
def test_unsafe_run_name_is_refused(tmp_path, nb_dir, name):
    with pytest.raises(ParamsError, match="run_name: .* is not a safe folder name"):
        resolve_run(_params(tmp_path, f"run_name: {json.dumps(name)}\n"), notebook_dir=nb_dir)


def test_every_problem_is_listed_at_once(tmp_path, nb_dir):
    with pytest.raises(ParamsError) as err:
        resolve_run(_params(tmp_path, 'learning_rat: 1\nmax_steps: "ten"\nrun_name: ../x\n'), ["bogus=1"], notebook_dir=nb_dir)
    message = str(err.value)
    assert "4 problem(s)" in message
    for part in ("learning_rat", "max_steps", "run_name", "bogus"):
        assert part in message


def test_set_overrides_the_file_and_is_validated(tmp_path, nb_dir):
    spec = resolve_run(_params(tmp_path, "max_steps: 5\n"), ["max_steps=7"], notebook_dir=nb_dir)
    assert spec.params["max_steps"] == 7
    with pytest.raises(ParamsError, match="max_stepz: unknown parameter; did you mean 'max_steps'"):
        resolve_run(_params(tmp_path, "max_steps: 5\n"), ["max_stepz=7"], notebook_dir=nb_dir)
    with pytest.raises(ParamsError, match="expected KEY=VALUE"):
        resolve_run(_params(tmp_path, ""), ["max_steps"], notebook_dir=nb_dir)


def test_key_of_a_notebook_the_run_leaves_out_is_an_error(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match="eval_samples: only declared by evaluate"):
        resolve_run(_params(tmp_path, "notebooks: [eda, finetune]\neval_samples: 3\n"), notebook_dir=nb_dir)


def test_only_runs_a_subset_but_keys_are_checked_against_the_file(tmp_path, nb_dir):
    spec = resolve_run(_params(tmp_path, "max_steps: 5\n"), only="eda", notebook_dir=nb_dir)
    assert spec.notebooks == ["eda"] and spec.params["max_steps"] == 5
    with pytest.raises(ParamsError, match="--only evaluate: evaluate not among"):
        resolve_run(_params(tmp_path, "notebooks: [eda]\n"), only="evaluate", notebook_dir=nb_dir)


def test_run_dir_is_reserved_for_the_runner(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match="run_dir: set by the runner"):
        resolve_run(_params(tmp_path, "run_dir: /tmp/x\n"), notebook_dir=nb_dir)


def test_bad_notebooks_list(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match="notebooks: 'train' is not a notebook; choose from eda, pairs, finetune, prefer, evaluate"):
        resolve_run(_params(tmp_path, "notebooks: [eda, train]\n"), notebook_dir=nb_dir)


def test_every_shipped_params_file_validates():
    files = sorted((REPO / "params").rglob("*.yaml"))
    assert {f.name for f in files} >= {"demo.yaml", "v1.yaml", "v5.yaml"}
    for f in files:
        spec = resolve_run(f)
        assert spec.notebooks, f


def test_readme_params_reference_is_current():
    readme = (REPO / "README.md").read_text()
    block = readme.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    assert block == reference_markdown(), "README params reference is stale: run `make docs`"


def test_every_parameter_is_documented_by_a_comment():
    undocumented = [p.name for p in declared_parameters().values() if not p.help]
    assert not undocumented, f"parameters without a comment saying what they trade off: {undocumented}"


# ---------------------------------------------------------------- hostile or broken params files

def test_a_billion_laughs_file_is_refused_at_once_without_quoting_the_expansion(tmp_path, nb_dir):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")]
    path = _params(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ParamsError, match=r"line 2, column \d+: YAML syntax error: aliases \(\*a\) are not allowed") as err:
        resolve_run(path, notebook_dir=nb_dir)
    assert len(str(err.value)) < 300 and "lol" not in str(err.value)


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path, nb_dir):
    with pytest.raises(ParamsError, match=r"duplicate key 'max_steps' \(lines 1 and 3\)"):
        resolve_run(_params(tmp_path, "max_steps: 5\nlearning_rate: 1e-4\nmax_steps: 50\n"), notebook_dir=nb_dir)


def test_a_file_that_is_not_utf8_gets_one_line(tmp_path, nb_dir):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"max_steps: 5\ndescription: caf\xe9 run\n")
    with pytest.raises(ParamsError, match=r"^\S+exp.yaml: line 2 is not UTF-8 text \(byte 0xe9\); save the file as UTF-8$"):
        resolve_run(path, notebook_dir=nb_dir)


def test_an_oversized_file_is_refused_by_its_size(tmp_path, nb_dir):
    import time

    path = _params(tmp_path, "".join(f"k{i}: {i}\n" for i in range(300_000)))
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match=r"bytes; a params file holds a few settings"):
        resolve_run(path, notebook_dir=nb_dir)
    assert time.perf_counter() - t0 < 1


def test_many_unknown_keys_are_listed_fast_and_capped(tmp_path, nb_dir):
    import time

    path = _params(tmp_path, "".join(f"learning_rat{i}: {i}\n" for i in range(2_500)))
    assert path.stat().st_size < 64 << 10
    t0 = time.perf_counter()
    with pytest.raises(ParamsError) as err:
        resolve_run(path, notebook_dir=nb_dir)
    assert time.perf_counter() - t0 < 5
    message = str(err.value)
    assert "2500 problem(s)" in message and "... and 2480 more" in message
    assert len(message.splitlines()) == 22 and "did you mean 'learning_rate'" in message


@pytest.mark.parametrize("only, needle", [
    (",", "--only ,: names no notebook; choose from eda, pairs, finetune, prefer, evaluate"),
    ("eval", "--only eval: 'eval' is not a notebook; choose from eda, pairs, finetune, prefer, evaluate; did you mean 'evaluate'?"),
])
def test_only_must_name_notebooks(tmp_path, nb_dir, only, needle):
    with pytest.raises(ParamsError) as err:
        resolve_run(_params(tmp_path, ""), only=only, notebook_dir=nb_dir)
    assert needle in str(err.value)


@pytest.mark.parametrize("item, kind", [
    ("description=hf_" + "aB3dE5gH7jK9" * 3, "Hugging Face token"),
    ("optim=ghp_" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J4i3H2", "GitHub Token"),
])
def test_a_secret_as_a_params_value_is_refused_without_repeating_it(tmp_path, nb_dir, item, kind):
    with pytest.raises(ParamsError) as err:
        resolve_run(_params(tmp_path, ""), [item], notebook_dir=nb_dir)
    message = str(err.value)
    assert f"looks like a secret ({kind})" in message and "environment" in message
    assert item.split("=", 1)[1] not in message


def test_values_are_checked_against_their_rules_with_every_problem_listed(tmp_path, nb_dir):
    with pytest.raises(ParamsError) as err:
        resolve_run(_params(tmp_path, "learning_rate: -1\nmax_steps: 100000000000\noptim: adamw_torchh\n"), notebook_dir=nb_dir)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert "learning_rate: -1.0 is not allowed; expected a number > 0" in message
    assert "max_steps: 100000000000 is not allowed" in message
    assert "optim: 'adamw_torchh' is not allowed" in message and "did you mean 'adamw_torch'" in message


def test_a_secret_in_a_comment_is_refused_too(tmp_path, nb_dir):
    token = "hf_" + "aB3dE5gH7jK9" * 3
    with pytest.raises(ParamsError, match=r"line 2: looks like a secret \(Hugging Face token\)") as err:
        resolve_run(_params(tmp_path, f"max_steps: 5\n# logged in with {token}\n"), notebook_dir=nb_dir)
    assert token not in str(err.value)
