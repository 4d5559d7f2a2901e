"""Fluency: degenerate, shuffled and made-up text is caught; real text of the data passes."""

import random

import numpy as np
import pytest

from ai2human.data.sample import generate_pairs
from ai2human.evaluate.fluency import NgramLM, calibrate_fluency, judge_fluency, measure, text_measurements


@pytest.fixture(scope="module")
def texts():
    rows = generate_pairs(160, seed=11)
    real = [r["human"] for r in rows] + [r["LLM"] for r in rows]
    return real[:120] + real[160:280], real[120:160] + real[280:]  # train, held out


@pytest.fixture(scope="module")
def lm_and_bounds(texts):
    train, held = texts
    lm = NgramLM.fit(train)
    return lm, calibrate_fluency(measure(held, lm))


def test_bigram_model_prefers_real_word_order(texts, lm_and_bounds):
    lm, _ = lm_and_bounds
    held = texts[1]
    rng = random.Random(0)
    shuffled = [" ".join(rng.sample(t.split(), len(t.split()))) for t in held]
    real_ppl = np.array([lm.perplexity(t) for t in held])
    shuffled_ppl = np.array([lm.perplexity(t) for t in shuffled])
    assert (shuffled_ppl > real_ppl).mean() > 0.95
    assert lm.perplexity("") == float("inf")


def test_measurements_of_degenerate_text():
    lm = NgramLM.fit(["the cat sat on the mat", "a dog sat on a log"])
    looping = text_measurements("the cat sat. " * 20, lm)
    assert looping["repeated_trigram_share"] > 0.8 and looping["distinct_2"] < 0.2
    made_up = text_measurements("zqxv blorptak fenwhistle vrrktz", lm)
    assert made_up["nonword_share"] == 1.0
    english = text_measurements("the weather was lovely yesterday", lm)
    assert english["nonword_share"] == 0.0  # English words are words even if training never saw them
    assert text_measurements(".\n.\n.", lm)["n_words"] == 0


def test_real_texts_are_fluent_and_degenerate_ones_are_not(texts, lm_and_bounds):
    lm, bounds = lm_and_bounds
    held = texts[1]
    rng = random.Random(1)
    cases = {
        "shuffled": [" ".join(rng.sample(t.split(), len(t.split()))) for t in held[:20]],
        "gibberish": [" ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(50))] * 3,
        "repeated": [(t.split(". ")[0] + ". ") * 15 for t in held[:20]],
        "dots": [".\n.\n.\n.", "", "!!!"],
    }
    assert judge_fluency(measure(held, lm), bounds)["fluent"].mean() >= 0.95
    for name, degenerate in cases.items():
        judged = judge_fluency(measure(degenerate, lm), bounds)
        assert not judged["fluent"].any(), name
        assert judged["fluency_problems"].str.len().gt(0).all(), name
    assert judge_fluency(measure([".\n.\n."], lm), bounds)["fluency_problems"][0] == "no words"


def test_bounds_include_base_model_perplexity_when_given(texts, lm_and_bounds):
    lm, _ = lm_and_bounds
    held = texts[1][:10]
    measured = measure(held, lm, lm_perplexity=np.linspace(10, 20, 10))
    bounds = calibrate_fluency(measured)
    assert bounds.bounds["lm_perplexity"]["side"] == "high" and bounds.bounds["lm_perplexity"]["limit"] > 20
    odd = measure(held[:2], lm, lm_perplexity=[15.0, 500.0])
    judged = judge_fluency(odd, bounds)
    assert list(judged["fluent"]) == [True, False] and "implausible" in judged["fluency_problems"][1]
