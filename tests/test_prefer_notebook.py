"""The prefer notebook run on a copy of the demo run, with the demo's opt-in settings (issue 19):
every section shows something, the DPO adapter and metrics are written, and the mean reward of
fresh samples on held-out inputs is higher after DPO than with the SFT adapter."""

from __future__ import annotations

import json
import shutil

import pytest

from ai2human import rundir
from ai2human.prefer.pairs import read_pairs
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, resolve_run
from conftest import REPO
from test_demo_run import section_outputs

DEMO_WITH_PREFER = "notebooks=[eda,pairs,finetune,prefer,evaluate]"


@pytest.fixture(scope="module")
def executed(demo_run, tmp_path_factory):
    import papermill as pm

    run_dir = tmp_path_factory.mktemp("prefer-run")
    shutil.copytree(demo_run / rundir.ADAPTER, run_dir / rundir.ADAPTER)
    shutil.copy2(demo_run / rundir.SPLIT, run_dir / rundir.SPLIT)
    params = resolve_run(REPO / "params/demo.yaml", [DEMO_WITH_PREFER]).notebook_params("prefer")
    params.update(run_dir=str(run_dir), dataset_path=str(REPO / "data" / "sample.csv"))
    out = run_dir / NOTEBOOKS["prefer"]
    pm.execute_notebook(str(NOTEBOOK_DIR / NOTEBOOKS["prefer"]), str(out), kernel_name="python3", progress_bar=False,
                        parameters=params)
    return run_dir, json.loads(out.read_text()), params


def _text(nb) -> str:
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for cell in nb["cells"] for o in cell.get("outputs", []))


@pytest.mark.slow
def test_every_section_shows_something_with_a_takeaway_and_figures(executed):
    _, nb, _ = executed
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code)
    sections = section_outputs(nb["cells"])
    assert len(sections) >= 8 and all(sections.values()), [k for k, v in sections.items() if not v]
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert figures >= 2, "the margin histogram and the reward-per-step plots"
    assert _text(nb).count("Takeaway:") >= 6


@pytest.mark.slow
def test_the_dpo_adapter_pairs_and_metrics_are_written(executed):
    run_dir, _, params = executed
    assert (run_dir / rundir.DPO_ADAPTER / "adapter_config.json").is_file()
    assert (run_dir / rundir.DPO_ADAPTER / "adapter_model.safetensors").is_file()
    assert not (run_dir / rundir.DPO_ADAPTER / "ref").exists(), "TRL's frozen reference copy is not saved"
    assert (run_dir / rundir.REWARD).is_file()
    metrics = json.loads((run_dir / rundir.DPO_METRICS).read_text())
    pairs = read_pairs(run_dir / rundir.DPO_PAIRS)
    assert metrics["pairs"]["pairs"] == len(pairs) > 0
    assert (pairs["chosen_reward"] > pairs["rejected_reward"]).all()
    assert metrics["pairs"]["inputs_sampled"] == params["dpo_rows"]
    steps = [p["step"] for p in metrics["probes"]]
    assert steps[0] == 0 and steps[-1] == params["dpo_max_steps"], "step 0 is the SFT adapter; the last probe follows the last step"
    assert len(metrics["steps"]) == params["dpo_max_steps"] and "rewards/margins" in metrics["steps"][0]
    first = metrics["steps"][0]
    assert abs(first["rewards/chosen"]) < 1e-6 and abs(first["rewards/rejected"]) < 1e-6, \
        "the reference is the SFT adapter itself: before any update the policy's log-ratio to it is 0"
    assert metrics["seconds_per_step"] > 0 and metrics["samples_before"] and metrics["samples_after"]


@pytest.mark.slow
def test_dpo_raises_the_mean_reward_of_fresh_samples_on_held_out_inputs(executed):
    run_dir, nb, _ = executed
    change = json.loads((run_dir / rundir.DPO_METRICS).read_text())["reward"]
    assert change["dpo_reward"] > change["sft_reward"], change
    assert "x, higher; mean log10 reward" in _text(nb), "the report's takeaway says so"


@pytest.mark.slow
def test_the_report_carries_no_stderr_progress_or_warnings(executed):
    """As every demo report (tests/test_demo_run.py): DPO's progress and TRL's warnings stay off the page."""
    from test_demo_run import NOISE

    _, nb, _ = executed
    found = [f"cell {i} {o['name']}: {''.join(o['text']).strip()[:160]}" for i, cell in enumerate(nb["cells"])
             for o in cell.get("outputs", []) if o.get("output_type") == "stream"
             and (o["name"] == "stderr" or NOISE.search("".join(o["text"])))]
    assert not found, " | ".join(found)
