"""Value rules: the values the issue lists are refused before a run, locally and in a notebook's setup cell."""

from __future__ import annotations

import math

import pytest

from ai2human.errors import ParamsError
from ai2human.rules import RULES, check_params, check_values
from ai2human.runner.params import declared_parameters
from conftest import REPO, run_cli

BAD = [
    ("train_sampling=sorted", "train_sampling: 'sorted' is not allowed; expected one of random, group_by_length, batch_rebalance"),
    ("overlong=cut", "overlong: 'cut' is not allowed; expected one of drop, truncate"),
    ("val_size=1.5", "val_size: 1.5 is not allowed"),
    ("learning_rate=-1", "learning_rate: -1.0 is not allowed"),
    ("num_gpus=-1", "num_gpus: -1 is not allowed"),
    ("lora_r=0", "lora_r: 0 is not allowed; expected an integer from 1 to 1,024"),
    ("lora_r=100000000", "lora_r: 100000000 is not allowed"),
    ("eval_steps=-0.5", "eval_steps: -0.5 is not allowed"),
    ("eval_steps=2.5", "eval_steps: 2.5 is not allowed"),
    ("temperature=-1", "temperature: -1.0 is not allowed"),
    ("max_steps=1e23", "max_steps: expected an integer"),
    ("max_steps=100000000000000000000000", "max_steps: 100000000000000000000000 is not allowed"),
    ("learning_rate=.inf", "learning_rate: inf is not allowed"),
    ("learning_rate=.nan", "learning_rate: nan is not allowed"),
    ("backend=cuda", "backend: 'cuda' is not allowed; expected one of auto, unsloth, hf"),
    ("gradient_checkpointing=always", "gradient_checkpointing: 'always' is not allowed"),
    ("per_device_train_batch_size=0", "per_device_train_batch_size: 0 is not allowed"),
    ("resume=", "resume: '' is not allowed"),
    ("report_to=wandbb", "report_to: 'wandbb' is not a known integration"),
    ("lr_scheduler_type=cosin", "did you mean 'cosine'"),
]


@pytest.mark.parametrize("item, needle", BAD, ids=[b[0] for b in BAD])
def test_each_bad_value_is_refused_by_the_runner(tmp_path, item, needle):
    from ai2human.runner.params import resolve_run

    with pytest.raises(ParamsError, match="problem") as err:
        resolve_run(REPO / "params" / "demo.yaml", [item])
    assert needle in str(err.value)


def test_early_stopping_needs_checkpoints_at_the_evaluations():
    problems = check_values({"early_stopping_patience": 2, "eval_steps": 0.2, "save_steps": 0.25, "val_size": 0.2})
    assert problems == ["early_stopping_patience: keeps the best checkpoint, so save_steps must equal eval_steps (0.2), got save_steps 0.25"]
    assert check_values({"early_stopping_patience": 2, "eval_steps": 0.2, "save_steps": 0.2, "val_size": 0.2}) == []
    assert "needs evaluation" in check_values({"early_stopping_patience": 2, "eval_steps": 0, "save_steps": 0})[0]


def test_cross_field_rules_between_lengths_and_columns():
    assert check_values({"max_new_tokens": 2048, "max_seq_length": 2048}) == [
        "max_new_tokens: 2048 leaves no room for the prompt in max_seq_length 2048"]
    assert "must differ" in check_values({"human_column": "text", "ai_column": "text"})[0]
    assert "num_train_epochs: must be > 0" in check_values({"max_steps": 0, "num_train_epochs": 0.0})[0]


@pytest.mark.parametrize("args", [[], ["--kaggle", "--dry-run"]], ids=["local", "kaggle-dry-run"])
def test_the_issue_values_exit_2_before_anything_runs(tmp_path, args):
    out = tmp_path / "runs"
    sets = ["train_sampling=sorted", "overlong=cut", "val_size=1.5", "learning_rate=-1", "early_stopping_patience=2",
            "save_steps=0.25", "num_gpus=-1", "lora_r=0"]
    proc = run_cli("params/demo.yaml", "--out", str(out), *[a for s in sets for a in ("--set", s)], *args,
                   env={"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_CONFIG_DIR": str(tmp_path / "nokaggle")})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "7 problem(s)" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    proc = run_cli("params/demo.yaml", "--out", str(out), "--set", "early_stopping_patience=2", "--set", "save_steps=0.25", *args,
                   env={"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_CONFIG_DIR": str(tmp_path / "nokaggle")})
    assert proc.returncode == 2 and "save_steps must equal eval_steps" in proc.stderr
    assert not out.exists()


def test_a_notebook_checks_its_own_parameters_from_its_globals():
    namespace = {name: p.default for name, p in declared_parameters(["finetune"]).items()}
    namespace.update(In=[], Out={}, get_ipython=print, pd=math)  # what else a kernel's globals hold
    check_params(namespace, "02_finetune")  # the defaults are the v5 run
    namespace.update(lora_r=0, learning_rate=math.inf, train_sampling="sorted")
    with pytest.raises(ParamsError) as err:
        check_params(namespace, "02_finetune")
    message = str(err.value)
    assert message.startswith("02_finetune parameters: 3 problem(s):")
    for name in ("lora_r", "learning_rate", "train_sampling"):
        assert f"  - {name}:" in message


def test_a_parameter_without_a_rule_passes_on_its_type():
    assert "brand_new_knob" not in RULES
    assert check_values({"brand_new_knob": 3, "another_one": "text"}) == []
    assert check_values({"brand_new_knob": math.nan}) == ["brand_new_knob: nan is not a finite number"]


def test_every_declared_default_satisfies_its_rule():
    defaults = {name: p.default for name, p in declared_parameters().items()}
    assert check_values(defaults) == []
