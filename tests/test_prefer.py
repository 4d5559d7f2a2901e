"""The preference stage's library (ai2human.prefer): pairs, the graded reward, and that the reward
never reads the half of the training split kept for the held-out judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ai2human.data.halves import reward_judge_halves
from ai2human.data.pairs import load_pairs, split_pairs, take
from ai2human.errors import UserError
from ai2human.prefer.pairs import build_pairs, read_pairs, write_pairs
from ai2human.prefer.reward import COLUMNS, TRUNCATED_FACTOR, build_reward, load_reward, soft_fluency, soft_meaning
from conftest import REPO


def _scored(rewards: dict[int, list[float]]) -> pd.DataFrame:
    rows = [{"input": i, "sample": j, "source": f"src {i}", "prompt": f"prompt {i}", "output": f"out {i}.{j}", "reward": r}
            for i, rs in rewards.items() for j, r in enumerate(rs)]
    return pd.DataFrame(rows)


def test_pairs_take_the_best_sample_against_the_worst_and_skip_ties_and_small_margins():
    scored = _scored({0: [0.2, 0.9, 0.1, 0.5], 1: [0.3, 0.3, 0.3], 2: [0.40, 0.41], 3: [0.7], 4: [0.0, 0.6]})
    pairs, stats = build_pairs(scored, min_margin=0.05)
    assert pairs["input"].tolist() == [0, 4]
    first = pairs.iloc[0]
    assert (first["chosen"], first["rejected"]) == ("out 0.1", "out 0.2")
    assert first["chosen_reward"] == 0.9 and first["rejected_reward"] == 0.1 and first["margin"] == pytest.approx(0.8)
    assert first["prompt"] == "prompt 0"
    assert stats["inputs_sampled"] == 5 and stats["pairs"] == 2
    assert stats["ties_skipped"] == 2, "equal rewards and a lone sample teach nothing"
    assert stats["below_margin_skipped"] == 1
    assert stats["margin_min"] == pytest.approx(0.6) and stats["margin_max"] == pytest.approx(0.8)
    assert build_pairs(scored, min_margin=0.0)[1]["pairs"] == 3, "a margin of 0.01 counts without a minimum"


def test_no_pairs_gives_empty_statistics_not_an_error():
    pairs, stats = build_pairs(_scored({0: [0.5, 0.5]}), 0.0)
    assert pairs.empty and stats["pairs"] == 0 and stats["margin_median"] is None


def test_pairs_file_holds_every_pair_with_both_scores(tmp_path):
    pairs, _ = build_pairs(_scored({0: [0.2, 0.9], 1: [0.8, 0.1]}), 0.0)
    path = write_pairs(pairs, tmp_path / "dpo_pairs.jsonl")
    back = read_pairs(path)
    assert len(path.read_text().splitlines()) == 2
    assert back[["chosen", "rejected", "chosen_reward", "rejected_reward"]].values.tolist() == \
        [["out 0.1", "out 0.0", 0.9, 0.2], ["out 1.0", "out 1.1", 0.8, 0.1]]


def test_soft_fluency_is_one_inside_every_bound_and_falls_with_the_excess():
    bounds = {"nonword_share": {"side": "high", "limit": 0.05}, "distinct_2": {"side": "low", "limit": 0.4},
              "ngram_perplexity": {"side": "high", "limit": 100.0}}
    measured = pd.DataFrame({"nonword_share": [0.0, 0.2, 0.5, 0.2, 0.0], "distinct_2": [1.0, 1.0, 1.0, 1.0, 0.1],
                             "ngram_perplexity": [50.0, 50.0, 50.0, 1e4, 50.0]})
    soft = soft_fluency(measured, bounds)
    assert soft[0] == 1.0, "a fluent text loses nothing"
    assert 1.0 > soft[1] > soft[2] > 0, "fewer made-up words rank higher"
    assert soft[1] > soft[3] > 0, "a word order far from real text costs more"
    assert 0 < soft[4] < 1


def test_soft_meaning_is_the_yardsticks_above_the_floor_and_decays_below_the_bar():
    sims = np.array([0.9, 0.5, 0.3, 0.1, 0.9])
    meaning = np.array([0.8, 0.0, 0.0, 0.0, 0.0])
    nearest = np.array([True, True, True, True, False])
    soft = soft_meaning(sims, meaning, nearest, unrelated=0.5)
    assert soft[0] == 0.8
    assert soft[1] > soft[2] > soft[3] > 0, "a closer miss still ranks higher"
    assert soft[4] <= soft[1], "nearer another input than its own: no more than the floor"


@pytest.fixture(scope="module")
def reward_setup():
    from ai2human.evaluate.meaning import load_embedder

    pairs, _ = load_pairs(REPO / "data/sample.csv", "human", "LLM")
    train, val = split_pairs(take(pairs, 120), 0.25, 42)
    reward_rows, judge_rows = reward_judge_halves(train, 42)
    embedder = load_embedder(device="cpu")
    return build_reward(reward_rows, val, embedder, seed=0), embedder, val, reward_rows, judge_rows


def test_reward_ranks_a_faithful_fluent_rewrite_above_gibberish_and_an_empty_text_at_zero(reward_setup):
    reward, embedder, val, *_ = reward_setup
    rows = take(val, 6)
    sources = rows["ai"].tolist()
    person = rows["human"].tolist()
    rng = np.random.default_rng(0)
    gibberish = ["".join(rng.choice(list("qwrtzpsdfgklxcvbnm "), 180)) for _ in sources]
    scored = {name: reward.score(embedder, sources, outputs) for name, outputs in
              {"person": person, "gibberish": gibberish, "empty": [""] * 6}.items()}
    assert list(scored["person"].columns) == COLUMNS
    assert (scored["person"]["reward"] > scored["gibberish"]["reward"]).all()
    assert (scored["gibberish"]["reward"] > 0).all(), "gibberish is ranked, not tied at 0"
    assert (scored["gibberish"]["score"] == 0).all(), "the strict yardstick score stays 0/1 on fluency"
    assert (scored["empty"]["reward"] == 0).all()
    for frame in scored.values():
        assert frame["reward"].between(0, 1).all()
    cut = reward.score(embedder, sources, person, truncated=[True] * 6)
    assert np.allclose(cut["reward"], scored["person"]["reward"] * TRUNCATED_FACTOR), "a cut-off text keeps half"


def test_the_reward_never_reads_the_judge_half(reward_setup):
    """Its detector and fluency model are fitted on the reward rows alone: a word only the judge's
    rows contain is unknown to both, and it would be known had they been read."""
    reward, embedder, val, reward_rows, judge_rows = reward_setup
    assert reward.info["reward_rows"] == len(reward_rows)
    assert reward.yardstick.detector.info["train_human"] == len(reward_rows)
    marked = judge_rows.assign(human=judge_rows["human"] + " zorblaxian zorblaxian")
    features = reward.yardstick.detector.pipeline.named_steps["features"].transformer_list[0][1]
    assert "zorblaxian" not in features.vocabulary_ and "zorblaxian" not in reward.yardstick.lm.unigrams
    leaked = build_reward(pd.concat([reward_rows, marked]), val, embedder, seed=0)  # what reading them would do
    leaked_words = leaked.yardstick.detector.pipeline.named_steps["features"].transformer_list[0][1].vocabulary_
    assert "zorblaxian" in leaked_words and "zorblaxian" in leaked.yardstick.lm.unigrams


def test_reward_save_load_and_a_missing_file(reward_setup, tmp_path):
    reward, embedder, val, *_ = reward_setup
    path = reward.save(tmp_path / "reward.joblib")
    back = load_reward(path)
    texts = take(val, 3)
    assert np.allclose(back.score(embedder, texts["ai"], texts["human"])["reward"],
                       reward.score(embedder, texts["ai"], texts["human"])["reward"])
    with pytest.raises(UserError, match="prefer notebook"):
        load_reward(tmp_path / "none.joblib")
