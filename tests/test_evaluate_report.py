"""What a reader of the demo's evaluation report relies on: the degenerate tiny model reads as a
failure in the verdict's first sentence, and the yardstick's controls are shown and saved."""

import json
import re

import nbformat

from ai2human.rundir import EVAL_METRICS, YARDSTICK


def _stdout(run, name="03_evaluate.ipynb") -> str:
    nb = nbformat.read(run / name, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


def _html(run, name="03_evaluate.ipynb") -> str:
    nb = nbformat.read(run / name, as_version=4)
    return "".join(o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_demo_verdict_leads_with_failure_and_success_rates(demo_run):
    metrics = json.loads((demo_run / EVAL_METRICS).read_text())
    finetuned = metrics["systems"]["finetuned"]
    assert list(finetuned)[:2] == ["success_rate", "score_mean"]
    assert finetuned["success_rate"] <= 0.05
    first = metrics["verdict"].splitlines()[0]
    assert first.startswith("The fine-tuned model's rewrites fail: only") and "because" in first and "not fluent" in first
    assert first in _stdout(demo_run)


def test_demo_report_shows_every_control_and_saves_the_yardstick(demo_run):
    metrics = json.loads((demo_run / EVAL_METRICS).read_text())
    controls = {c["control"]: c for c in metrics["controls"]}
    assert len(controls) == 8 and all(0 <= c["success_rate"] <= 1 for c in controls.values())
    assert metrics["trustworthy"] == all(c["held"] for c in controls.values())
    html = _html(demo_run)
    assert "Controls: success rate per control" in html and all(name.replace("'", "&#x27;") in html or name in html for name in controls)
    assert "Systems x metrics" in html
    assert not re.findall(r">\s*-?\d+\.\d{4,}\s*<", html), "a table cell shows a number at raw precision (0.519000)"
    assert (demo_run / YARDSTICK).is_file() and metrics["detectors"]["tfidf"]["roc_auc"] >= 0.9


def test_demo_report_weighs_the_reward_against_a_held_out_judge(demo_run):
    """The demo has no preference stage: the section says so and still shows the judge's numbers."""
    metrics = json.loads((demo_run / EVAL_METRICS).read_text())
    check = metrics["reward_vs_judge"]
    assert list(check["systems"]) == ["identity", "base", "finetuned", "human"] and check["dpo_adapter"] is None
    assert check["judge_quality"]["roc_auc"] >= 0.9 and check["judge_train_rows"] == metrics["rows"]["train"] // 2
    human, finetuned = check["systems"]["human"], check["systems"]["finetuned"]
    assert human["judge_human_share"] >= 0.9 and finetuned["held_out_success_rate"] <= 0.05
    assert all(row["reward_mean"] is None for row in check["systems"].values())  # no reward.joblib: n/a, not 0
    assert "Takeaway: no DPO adapter was found" in _stdout(demo_run)
    assert "Reward against a judge it never saw" in _html(demo_run) and "hacking" not in metrics["verdict"]
