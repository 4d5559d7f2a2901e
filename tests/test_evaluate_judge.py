"""The held-out judge and the reward-against-judge check: the judge learns style from the judge half
only, the comparison table carries what the report shows, and the verdict calls out reward hacking."""

import random

import numpy as np
import pandas as pd
import pytest

from ai2human.data.halves import reward_judge_halves
from ai2human.evaluate import reward_vs_judge as rvj
from ai2human.evaluate.judge import FEATURES, HeldOutJudge, feature_table, fit_judge, fit_judge_on_split
from ai2human.evaluate.summary import summary_table
from ai2human.evaluate.verdict import reward_sentence, verdict
from ai2human.rundir import DPO_ADAPTER

# Two vocabularies per style: the judge trains on one and is tested on the other, so only style
# (sentence length and spread, word length, contractions, pronouns, punctuation) can carry it.
HUMAN_STYLE = [
    ["I don't know.", "It was cold. Really cold!", "We just sat there for like an hour.", "Maybe they're right?",
     "So yeah.", "I didn't want to go, but I went anyway.", "You'd have laughed.", "That's it, honestly."],
    ["She can't swim.", "He laughed. We ran!", "My dog won't eat that stuff, I swear.", "Isn't it odd?",
     "Oh well.", "I'd say it's fine, mostly.", "You know what I mean.", "We're late again, sorry."],
]
AI_STYLE = [
    ["Furthermore, comprehensive implementation of sustainable infrastructure demonstrates considerable organizational effectiveness.",
     "Additionally, collaborative methodologies facilitate substantial improvements throughout contemporary educational institutions.",
     "Consequently, stakeholders should prioritize transparent communication regarding environmental considerations.",
     "Moreover, technological advancements significantly transform traditional approaches toward professional development."],
    ["Ultimately, interdisciplinary research initiatives generate remarkable opportunities regarding economic diversification.",
     "Therefore, systematic evaluation procedures strengthen institutional accountability across governmental organizations.",
     "Nevertheless, innovative strategies continuously reshape conventional understanding concerning community engagement.",
     "Accordingly, meticulous documentation practices ensure consistent interpretation throughout administrative departments."],
]


def texts(pool, n, seed, sentences=(3, 6)):
    rng = random.Random(seed)
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(*sentences))) for _ in range(n)]


def pairs(n, vocabulary, seed, start=0):
    return pd.DataFrame({"human": texts(HUMAN_STYLE[vocabulary], n, seed), "ai": texts(AI_STYLE[vocabulary], n, seed + 1),
                         "row": range(start, start + n)})


def auc(judge, frame):
    from sklearn.metrics import roc_auc_score

    scores = np.r_[judge.predict_human_proba(frame["human"]), judge.predict_human_proba(frame["ai"])]
    return roc_auc_score(np.r_[np.ones(len(frame)), np.zeros(len(frame))], scores)


def test_features_are_stylometric_and_read_the_style():
    frame = feature_table(["I don't know. Maybe? So yeah, we went.", AI_STYLE[0][0], ""])
    assert list(frame.columns) == list(FEATURES) and "llm_words_per_100w" not in frame
    human, ai, empty = frame.iloc[0], frame.iloc[1], frame.iloc[2]
    assert human["contractions_per_100w"] > 0 and ai["contractions_per_100w"] == 0
    assert ai["word_len_mean"] > human["word_len_mean"] + 4 and human["questions_per_100w"] > 0
    assert human["first_person_per_100w"] > 0 and human["sentence_len_std"] > 0
    assert np.isfinite(empty.to_numpy()).all() and empty["log_words"] == 0


def test_judge_separates_human_from_ai_style_in_words_it_never_saw():
    judge = fit_judge(pairs(30, 0, seed=1), pairs(20, 1, seed=2), seed=0)
    assert isinstance(judge, HeldOutJudge)
    assert judge.quality["roc_auc"] >= 0.95 and judge.quality["n_human"] == 20  # measured on the other vocabulary
    assert auc(judge, pairs(20, 1, seed=3)) >= 0.95
    assert judge.predict_human_proba([]).shape == (0,)


def test_judge_trains_only_on_the_judge_half():
    train = pairs(40, 0, seed=4)
    reward_rows, judge_rows = reward_judge_halves(train, 42)
    # Poison the reward half: its labels swapped. A judge that saw those rows would be near chance.
    poisoned = train.copy()
    flip = poisoned["row"].isin(reward_rows["row"])
    poisoned.loc[flip, ["human", "ai"]] = poisoned.loc[flip, ["ai", "human"]].to_numpy()
    val = pairs(20, 1, seed=5, start=100)
    judge = fit_judge_on_split(poisoned, val, split_seed=42, seed=0)
    assert sorted(judge.info["rows"]) == sorted(judge_rows["row"]) and judge.info["train_rows"] == len(judge_rows)
    assert set(judge.info["rows"]).isdisjoint(reward_rows["row"])
    assert judge.quality["roc_auc"] >= 0.95
    assert auc(fit_judge(poisoned, val, seed=0), val) < 0.8  # the same fit on every row is fooled: the test can fail


class FixedJudge:
    def __init__(self, probas):
        self.probas = probas
        self.quality = {"roc_auc": 0.9, "tpr_at_1pct_fpr": 0.5, "accuracy": 0.8, "n_human": 10, "n_ai": 10}
        self.info = {"train_rows": 7, "features": ["f"]}

    def predict_human_proba(self, texts):
        return np.array([self.probas[t] for t in texts], float)


def per_text(success, fluent=None, fast=None):
    """A yardstick-like per-text frame: every column the summary table and the verdict read."""
    n = len(success)
    fluent = [True] * n if fluent is None else fluent
    frame = pd.DataFrame({"success": success, "score": [0.8 if s else 0.1 for s in success], "judged_human": success,
                          "human_proba": [0.9 if s else 0.2 for s in success], "fluent": fluent,
                          "fluency_problems": ["" if f else "no words" for f in fluent], "meaning_kept": [True] * n,
                          "similarity": [0.8] * n, "invents_nothing": [True] * n, "not_empty": [True] * n,
                          "not_truncated": [True] * n, "n_added": [0] * n, "p_human_tfidf": [0.9 if s else 0.2 for s in success]})
    if fast is not None:
        frame["p_human_fast_detect"] = fast
    return frame


def test_comparison_table_columns_and_values_on_a_toy_input():
    outputs = {"finetuned": ["a", "b"], "dpo": ["c", "d"], "human": ["e", "f"]}
    judge = FixedJudge({"a": 0.9, "b": 0.2, "c": 0.6, "d": 0.7, "e": 0.8, "f": 0.4})
    scores = {"finetuned": per_text([True, False]), "dpo": per_text([True, True], fluent=[False, True]),
              "human": per_text([True, True])}
    rewards = {"finetuned": np.array([0.2, 0.4]), "dpo": np.array([0.9, 0.7]), "human": np.array([0.5, 0.5])}
    held_out = rvj.per_text(outputs, scores, judge, rewards)
    assert held_out["dpo"]["held_out_success"].tolist() == [False, True]  # judged human but not fluent, then both
    assert held_out["finetuned"]["reward"].tolist() == [0.2, 0.4] and held_out["finetuned"].index.equals(scores["finetuned"].index)
    table = rvj.reward_vs_judge(held_out, scores)
    assert list(table.index) == ["finetuned", "dpo", "human"]
    assert list(table.columns) == ["reward_mean", "judge_p_human_mean", "judge_human_share", "held_out_success_rate"]
    assert table.loc["dpo"].to_dict() == pytest.approx({"reward_mean": 0.8, "judge_p_human_mean": 0.65,
                                                         "judge_human_share": 1.0, "held_out_success_rate": 0.5})
    assert table.loc["finetuned", "held_out_success_rate"] == 0.5 and table.loc["human", "held_out_success_rate"] == 0.5
    fast = {k: per_text([True, False], fast=[0.7, 0.1]) for k in outputs}
    without = rvj.reward_vs_judge(rvj.per_text(outputs, fast, judge), fast)
    assert np.isnan(without["reward_mean"]).all() and (without["fast_detect_human_share"] == 0.5).all()
    assert rvj.formatted(without).loc["dpo"].tolist() == ["n/a", "0.650", "100%", "100%", "50%"]
    saved = rvj.metrics(without, judge, {}, reward_found=False)
    assert saved["systems"]["dpo"]["reward_mean"] is None and saved["judge_quality"]["roc_auc"] == 0.9


def test_takeaway_and_quality_table_say_what_was_compared():
    judge = FixedJudge({})
    table = check([0.3, 0.6], [0.1, 0.2], [0.4, 0.5])
    assert rvj.takeaway(table, judge, dpo_found=False, reward_found=False).startswith("no DPO adapter was found")
    assert "ROC AUC 0.90 (TPR at 1% FPR 0.50), trained on 7 rows" in rvj.takeaway(table, judge, False, False)
    assert "no reward.joblib" in rvj.takeaway(table, judge, dpo_found=True, reward_found=False)
    assert rvj.takeaway(table, judge, True, True).startswith("DPO moved the mean reward 0.300 -> 0.600 and held-out success 10% -> 20%")
    quality = rvj.quality_frame({"tfidf": judge.quality}, judge.quality)
    assert list(quality.index) == ["TF-IDF detector", "held-out judge (stylometric, judge half)"]
    assert quality.loc["TF-IDF detector"].tolist() == ["0.900", "0.500", "0.800", "10", "10"]


class FakeReward:
    """prefer.reward.Reward's interface: ``score`` -> a frame with a ``reward`` column in [0, 1]."""

    def score(self, embedder, sources, outputs, truncated=None):
        cut = [False] * len(outputs) if truncated is None else truncated
        return pd.DataFrame({"reward": [0.0 if c else min(1.0, len(o) / 10) for o, c in zip(outputs, cut)]})


def test_rewards_are_scored_per_system_and_the_dpo_adapter_is_found(tmp_path):
    got = rvj.reward_scores(FakeReward(), None, ["s", "s"], {"base": ["abcde", "x" * 20], "dpo": ["ab", "abcd"]},
                            {"base": [False, True]})
    assert got["base"].tolist() == [0.5, 0.0] and got["dpo"].tolist() == pytest.approx([0.2, 0.4])
    assert rvj.reward_scores(None, None, [], {"base": []}, {}) is None
    assert rvj.dpo_adapter(tmp_path) == {} and rvj.load_run_reward(tmp_path) is None
    (tmp_path / DPO_ADAPTER).mkdir()
    assert rvj.dpo_adapter(tmp_path) == {}  # a folder without adapter_config.json is not an adapter
    (tmp_path / DPO_ADAPTER / "adapter_config.json").write_text("{}")
    assert rvj.dpo_adapter(tmp_path) == {"dpo": (tmp_path / DPO_ADAPTER).resolve()}


def check(reward, success, p_human, fast=None):
    """A reward_vs_judge table for finetuned and dpo: (finetuned, dpo) per column."""
    table = pd.DataFrame({"reward_mean": reward, "judge_p_human_mean": p_human, "judge_human_share": p_human,
                          "held_out_success_rate": success}, index=["finetuned", "dpo"])
    if fast is not None:
        table["fast_detect_human_share"] = fast
    return table


def test_reward_up_and_judge_flat_reads_as_reward_hacking():
    text = reward_sentence(check([0.30, 0.55], [0.10, 0.10], [0.40, 0.41]))
    assert text.startswith("This looks like reward hacking: DPO raised the reward over the fine-tuned model (mean reward 0.300 -> 0.550)")
    assert "held-out judge's success 10% -> 10%, its mean P(human) 0.400 -> 0.410" in text
    assert "learnt the reward's detector, not human-like writing" in text
    assert "Fast-DetectGPT judges human 20% -> 15%" in reward_sentence(check([0.3, 0.55], [0.1, 0.1], [0.4, 0.4], [0.2, 0.15]))


def test_reward_and_judge_up_is_confirmed_and_no_gain_says_so():
    both = reward_sentence(check([0.30, 0.55], [0.10, 0.30], [0.40, 0.41]))
    assert both.startswith("The held-out judge confirms the DPO gain") and "hacking" not in both
    assert reward_sentence(check([0.30, 0.31], [0.1, 0.1], [0.4, 0.4])).startswith("DPO did not raise the reward")
    assert "saved no reward" in reward_sentence(check([np.nan, np.nan], [0.1, 0.1], [0.4, 0.4]))
    assert reward_sentence(check([0.3, 0.6], [0.1, 0.1], [0.4, 0.4]).drop(index="dpo")) == ""
    assert reward_sentence(None) == ""


def test_verdict_keeps_its_first_sentences_and_adds_the_reward_check():
    scores = {"base": per_text([False] * 4), "finetuned": per_text([False] * 4, fluent=[False] * 4),
              "dpo": per_text([False] * 4, fluent=[False] * 4), "human": per_text([True] * 4)}
    table = summary_table(scores)
    controls = pd.DataFrame({"should": ["succeed", "fail"], "success_rate": [1.0, 0.0], "held": [True, True]},
                            index=pd.Index(["human as is", "empty"], name="control"))
    quality = {"tfidf": {"roc_auc": 0.99, "tpr_at_1pct_fpr": 0.9}}
    plain = verdict(table, scores, quality, controls)
    hacked = verdict(table, scores, quality, controls, reward_check=check([0.3, 0.6], [0.0, 0.0], [0.5, 0.5]))
    assert hacked.startswith(plain) and hacked.splitlines()[0].startswith("The fine-tuned model's rewrites fail: only 0%")
    assert hacked.splitlines()[-1].startswith("This looks like reward hacking") and "hacking" not in plain
    assert "the DPO model 0%" in plain  # the others' line names the DPO system in words
    no_dpo = verdict(table.drop(index="dpo"), scores, quality, controls, reward_check=check([0.3, 0.6], [0, 0], [0.5, 0.5]).drop(index="dpo"))
    assert "hacking" not in no_dpo and "confirms" not in no_dpo
