"""The yardstick on the bundled sample: controls behave, a degenerate system fails in the verdict's
first sentence, and the table, records and plots carry what the report shows."""

import json

import numpy as np
import pandas as pd
import pytest

from ai2human.data.pairs import load_pairs, split_pairs, take
from ai2human.eda.style import STYLE_COLUMNS, style_table
from ai2human.errors import UserError
from ai2human.evaluate import report, summary
from ai2human.evaluate.controls import NEGATIVE_LIMIT, POSITIVE_LIMIT, control_table, score_controls, trust_problems
from ai2human.evaluate.meaning import load_embedder
from ai2human.evaluate.style_gap import style_distance, style_gaps
from ai2human.evaluate.verdict import verdict
from ai2human.evaluate.yardstick import Yardstick, build_yardstick, length_ratio
from conftest import REPO

pytestmark = pytest.mark.slow  # fits the yardstick on the whole sample (embeddings, n-gram model)


@pytest.fixture(scope="module")
def setup():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        pairs, _ = load_pairs(REPO / "data" / "sample.csv", "human", "LLM")
        train, val = split_pairs(pairs, 0.2, 42)
        embedder = load_embedder(device="cpu")
        yield build_yardstick(train, val, embedder, seed=0), embedder, take(val, 24)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def controls(setup):
    yardstick, embedder, rows = setup
    return score_controls(yardstick, embedder, rows, seed=0)


def test_negative_controls_fail_and_positive_controls_succeed_on_the_sample(controls):
    _, scores, table = controls
    assert set(table.index) == {"human as is", "human, one edit", "AI unchanged", "gibberish", "shuffled words",
                                "one sentence repeated", "another row's human", "empty"}
    for name, row in table.iterrows():
        if row["should"] == "succeed":
            assert row["success_rate"] >= POSITIVE_LIMIT, name
        else:
            assert row["success_rate"] <= NEGATIVE_LIMIT, name
    assert table["held"].all() and trust_problems(table) == []
    # each negative control fails for its own reason, not by accident
    assert not scores["AI unchanged"]["judged_human"].any()
    assert not scores["shuffled words"]["fluent"].any() and not scores["gibberish"]["fluent"].any()
    assert not scores["one sentence repeated"]["fluent"].any()
    assert scores["another row's human"]["fluent"].all() and not scores["another row's human"]["meaning_kept"].any()


def test_a_control_that_does_not_hold_makes_the_yardstick_untrustworthy(controls):
    built, scores, _ = controls
    broken = dict(scores)
    broken["gibberish"] = scores["human as is"]  # pretend gibberish passed
    table = control_table(built, broken)
    problems = trust_problems(table)
    assert len(problems) == 1 and "'gibberish' succeeds 100%" in problems[0]


@pytest.fixture(scope="module")
def systems(setup):
    yardstick, embedder, rows = setup
    sources = rows["ai"].tolist()
    outputs = {"identity": sources, "base": [s + " Zebulon said so in 1987." for s in sources],
               "finetuned": [".\n.\n."] * (len(sources) - 1) + [""], "human": rows["human"].tolist()}
    truncated = {"base": [True] * len(sources)}
    scores = {name: yardstick.score(embedder, sources, texts, truncated.get(name)) for name, texts in outputs.items()}
    styles = {name: style_table(texts) for name, texts in outputs.items()}
    table = summary.summary_table(scores, {n: style_distance(styles[n], styles["human"]) for n in styles})
    return sources, outputs, scores, table


def test_score_is_zero_for_degenerate_output_and_success_needs_every_condition(systems):
    _, _, scores, table = systems
    ft = scores["finetuned"]
    assert not ft["success"].any() and (ft["score"] == 0).all() and not ft["fluent"].any()
    assert ft["fluency_problems"].iloc[0] == "no words" and not ft["not_empty"].iloc[-1]
    base = scores["base"]
    assert not base["success"].any() and base["added_names"].map(lambda v: "Zebulon" in v).all()
    assert (base["failure"].str.contains("are cut off")).all()
    assert ((scores["identity"]["score"] >= 0) & (scores["identity"]["score"] <= 1)).all()
    assert list(table.columns[:2]) == ["success_rate", "score_mean"]
    assert table.loc["finetuned", "success_rate"] == 0 and table.loc["finetuned", "fluent_share"] == 0
    assert table.loc["identity", "similarity_mean"] == pytest.approx(1.0, abs=1e-4)
    assert table.loc["base", "adds_names_share"] == 1 and table.loc["base", "truncated_share"] == 1


def test_verdict_first_sentence_says_a_degenerate_system_fails_and_why(systems, controls):
    _, _, scores, table = systems
    text = verdict(table, scores, {"tfidf": {"roc_auc": 0.99, "tpr_at_1pct_fpr": 0.9}}, controls[2])
    first = text.splitlines()[0]
    assert first.startswith("The fine-tuned model's rewrites fail: only 0% succeed")
    assert "are not fluent (degenerate: no words)" in first
    assert text.splitlines()[1].startswith("The yardstick holds on this data")
    assert "TF-IDF detector ROC AUC 0.99, TPR at 1% FPR 0.90" in text
    broken = controls[2].copy()
    broken.loc["gibberish", ["success_rate", "held"]] = [0.5, False]
    assert "NOT trustworthy on this data: the negative control 'gibberish' succeeds 50%" in verdict(
        table, scores, {"tfidf": {"roc_auc": 0.99, "tpr_at_1pct_fpr": 0.9}}, broken)


def test_formatted_table_shows_shares_as_percent(systems):
    table = systems[3]
    shown = summary.formatted(summary.describe_table(table))
    assert shown.loc["success_rate", "finetuned"] == "0%" and shown.loc["similarity_mean", "identity"] == "1.00"
    assert not any(v.endswith("000") for v in shown.drop(columns="what it measures").to_numpy().ravel())


def test_output_records_roundtrip(systems, tmp_path):
    sources, outputs, scores, _ = systems
    pairs = pd.DataFrame({"ai": sources, "human": outputs["human"], "row": range(11, 11 + len(sources))})
    path = report.save_jsonl(report.output_records(pairs, outputs, scores), tmp_path / "eval_outputs.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(sources) and lines[0]["row"] == 11 and lines[0]["input"] == sources[0]
    base = lines[0]["systems"]["base"]
    assert base["added"]["names"] == ["Zebulon"] and base["success"] is False and 0 <= base["score"] <= 1
    assert lines[-1]["systems"]["finetuned"]["not_empty"] is False
    assert "no words" in report.why_failed(scores["finetuned"].iloc[0])


def test_plot_distributions_draws_one_panel_per_component(systems):
    import matplotlib

    matplotlib.use("Agg")
    fig = report.plot_distributions(systems[2], 0.5)
    assert len(fig.axes) == 4 and all(len(ax.get_xticklabels()) == 4 for ax in fig.axes)


def test_yardstick_save_load_and_bad_files(setup, tmp_path):
    yardstick = setup[0]
    loaded = Yardstick.load(yardstick.save(tmp_path / "y.joblib"))
    assert loaded.meaning == yardstick.meaning and loaded.fluency.bounds == yardstick.fluency.bounds
    with pytest.raises(UserError, match="has no evaluation"):
        Yardstick.load(tmp_path / "missing.joblib")
    (tmp_path / "cut.joblib").write_bytes((tmp_path / "y.joblib").read_bytes()[:100])
    with pytest.raises(UserError, match="unreadable"):
        Yardstick.load(tmp_path / "cut.joblib")


def _style_frame(means, std=1.0):
    return pd.DataFrame({c: m + np.array([-std, std]) for c, m in zip(STYLE_COLUMNS, means)})


def test_style_distance_is_zero_for_the_same_style_and_one_per_human_std():
    human = _style_frame(np.arange(len(STYLE_COLUMNS)), std=2.0)
    assert style_distance(human, human) == 0.0 and style_distance(human + 2.0, human) == pytest.approx(1.0)
    constant = _style_frame(np.zeros(len(STYLE_COLUMNS)))
    constant["markdown"] = 0.0
    system = constant.copy()
    system["markdown"] = [1.0, 1.0]
    gaps = style_gaps(system, constant)
    assert np.isfinite(gaps).all() and gaps["markdown"] > 0


def test_length_ratio():
    ratios = length_ratio(["one two three four", "", "a b"], ["one two", "x", "a b c d"])
    assert ratios[0] == 0.5 and np.isnan(ratios[1]) and ratios[2] == 2.0
