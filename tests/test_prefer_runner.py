"""The preference stage in a run (issue 19): opt-in, after fine-tuning, before an evaluation that
then waits for it, checked like every parameter, and pushed to Kaggle with its inputs attached."""

from __future__ import annotations

import json

import pytest

from ai2human.errors import ParamsError
from ai2human.runner.params import NOTEBOOKS, dependencies, resolve_run
from conftest import REPO, kaggle_dry_run, run_cli

DEMO_WITH_PREFER = "notebooks=[eda,pairs,finetune,prefer,evaluate]"


def test_the_stage_is_opt_in_and_runs_between_finetune_and_evaluate():
    assert list(NOTEBOOKS).index("finetune") < list(NOTEBOOKS).index("prefer") < list(NOTEBOOKS).index("evaluate")
    assert resolve_run(REPO / "params/demo.yaml").notebooks == ["eda", "finetune", "evaluate"], "the demo is unchanged"
    assert resolve_run(REPO / "params/v5.yaml").notebooks == ["eda", "finetune", "evaluate"], "v5 is unchanged"
    assert resolve_run(REPO / "params/demo.yaml", [DEMO_WITH_PREFER]).notebooks == ["eda", "finetune", "prefer", "evaluate"]
    assert resolve_run(REPO / "params/v5.yaml", only="prefer").notebooks == ["prefer"], "asked for by name, it runs"


def test_v5_dpo_is_v5_plus_the_prefer_stage():
    v5, dpo = resolve_run(REPO / "params/v5.yaml"), resolve_run(REPO / "params/v5-dpo.yaml")
    assert dpo.notebooks == ["eda", "finetune", "prefer", "evaluate"]
    shared = set(dpo.params) & set(v5.params)
    assert {"model_name", "max_steps", "learning_rate"} <= shared
    assert {k: dpo.params[k] for k in shared} == {k: v5.params[k] for k in shared}, "every v5 setting is kept"
    assert dpo.notebook_params("prefer")["dpo_k"] == 4


def test_the_demo_keeps_cpu_sized_dpo_values_that_apply_only_when_prefer_runs():
    spec = resolve_run(REPO / "params/demo.yaml", [DEMO_WITH_PREFER])
    prefer = spec.notebook_params("prefer")
    assert prefer["model_name"] == "local:tiny-qwen2" and prefer["dpo_rows"] < 256 and prefer["dpo_max_steps"] < 32
    assert not any(k.startswith("dpo_") for k in resolve_run(REPO / "params/demo.yaml").params), "dormant without prefer"
    with pytest.raises(ParamsError, match="dpo_k"):  # dormant values are still checked
        resolve_run(REPO / "params/demo.yaml", ["dpo_k=1"])


def test_evaluate_waits_for_prefer_only_when_the_run_has_it():
    assert dependencies("prefer", {}) == ["finetune"]
    assert dependencies("evaluate", {}, ["eda", "finetune", "evaluate"]) == ["finetune"]
    assert dependencies("evaluate", {}, ["eda", "finetune", "prefer", "evaluate"]) == ["finetune", "prefer"]


@pytest.mark.parametrize("settings, message", [
    (["dpo_k=1"], "dpo_k: 1 is not allowed"),
    (["dpo_beta=0"], "dpo_beta: 0.0 is not allowed"),
    (["dpo_temperature=0"], "dpo_temperature"),
    (["dpo_max_length=4096"], "longer than max_seq_length"),
    (["dpo_min_margin=-0.1"], "dpo_min_margin"),
])
def test_bad_dpo_settings_are_refused_before_anything_runs(settings, message):
    with pytest.raises(ParamsError, match=message):
        resolve_run(REPO / "params/v5-dpo.yaml", settings)


@pytest.mark.parametrize("bad", ["dpo_k=1", "dpo_beta=0"])
def test_cli_refuses_a_bad_dpo_value_with_one_line_and_exit_2(tmp_path, bad):
    out = tmp_path / "runs"
    proc = run_cli("params/demo.yaml", "--set", DEMO_WITH_PREFER, "--set", bad, "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    name = bad.split("=")[0]
    lines = [line for line in proc.stderr.splitlines() if name in line]
    assert len(lines) == 1 and "not allowed" in lines[0], proc.stderr
    assert not out.exists(), "nothing is written for a refused run"


def test_kaggle_dry_run_of_v5_dpo_renders_four_kernels_in_order(tmp_path):
    order, meta, kernels = kaggle_dry_run("params/v5-dpo.yaml", tmp_path)
    assert order == ["eda", "finetune", "prefer", "evaluate"]
    suffix = {short: [s.rsplit("-", 1)[1] for s in m["kernel_sources"]] for short, m in meta.items()}
    assert suffix == {"eda": [], "finetune": [], "prefer": ["finetune"], "evaluate": ["finetune", "prefer"]}
    assert meta["prefer"]["enable_gpu"], "DPO trains a 7B model: a GPU kernel"
    rendered = json.loads((kernels / "02b_prefer" / "02b_prefer.ipynb").read_text())
    injected = "".join("".join(c["source"]) for c in rendered["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "run_dir = \"/kaggle/working\"" in injected and "dpo_k = 4" in injected
