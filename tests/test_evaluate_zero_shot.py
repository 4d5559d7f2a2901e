"""Base-model signals (Fast-DetectGPT, perplexity) with the tiny model on a CPU, and their place in
the yardstick: the GPU path's code, run small."""

import math

import numpy as np
import pandas as pd
import pytest

from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.evaluate.yardstick import build_yardstick
from ai2human.evaluate.zero_shot import SignalCache, ZeroShotDetector, _row_signals, adapter_off, model_signals, zero_shot_enabled


@pytest.fixture(scope="module")
def tiny():
    from ai2human.models.loading import load_tokenizer
    from ai2human.models.tiny import resolve_model_name
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve_model_name("local:tiny-qwen2"))
    return model.eval(), load_tokenizer("local:tiny-qwen2")


def test_zero_shot_setting():
    assert zero_shot_enabled("auto", "cuda") and not zero_shot_enabled("auto", "cpu")
    assert zero_shot_enabled("on", "cpu") and not zero_shot_enabled("off", "cuda")
    with pytest.raises(UserError, match="zero_shot_detector"):
        zero_shot_enabled("maybe", "cpu")


def test_criterion_matches_its_definition():
    import torch

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    labels = torch.tensor([1, 2])
    crit, ppl = _row_signals(logits, labels)
    lp = torch.log_softmax(logits, -1)
    p = lp.exp()
    ll = lp[[0, 1], labels]
    mean, var = (p * lp).sum(-1), (p * lp**2).sum(-1) - (p * lp).sum(-1) ** 2
    assert crit == pytest.approx(float((ll.sum() - mean.sum()) / var.sum().sqrt()), rel=1e-5)
    assert ppl == pytest.approx(math.exp(-float(ll.mean())), rel=1e-5)


def test_model_signals_tell_the_models_own_text_from_other_text(tiny):
    from ai2human.evaluate.generation import generate

    model, tokenizer = tiny
    real = [r["human"][:400] for r in generate_pairs(6, seed=3)]
    own = ["The" + generate(model, tokenizer, ["The"], max_new_tokens=60, temperature=0.0).texts[0]]
    got = model_signals(model, tokenizer, real + own + ["x"], batch_size=3)
    assert got["fast_detect"].shape == (8,) and np.isnan(got["fast_detect"][-1])  # one token: nothing to score
    empty = model_signals(model, tokenizer, ["", "  ", real[0]], batch_size=2)  # the empty control's texts
    assert np.isnan(empty["fast_detect"][:2]).all() and empty["fast_detect"][2] == pytest.approx(got["fast_detect"][0], rel=1e-4)
    assert np.isfinite(got["lm_perplexity"][:7]).all() and (got["lm_perplexity"][:7] > 1).all()
    # Greedy output sits on the model's modes: far more "machine-like" than text it never wrote.
    assert got["fast_detect"][6] > got["fast_detect"][:6].max()
    assert got["lm_perplexity"][6] < got["lm_perplexity"][:6].min()


def test_signal_cache_scores_each_text_once_with_the_adapter_off(tiny):
    model, tokenizer = tiny
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, **batch):
            calls.append(batch["input_ids"].shape[0])
            return self.inner(**batch)

        def parameters(self):
            return self.inner.parameters()

    cache = SignalCache(Counting(model), tokenizer, batch_size=8)
    first = cache(["one text here", "another text here", "one text here"])
    again = cache(["another text here"])
    assert sum(calls) == 2 and again["fast_detect"][0] == first["fast_detect"][1]
    with adapter_off(model):  # a plain model has no adapter: a no-op
        pass


def test_calibrated_zero_shot_detector_orders_texts():
    detector = ZeroShotDetector.calibrate(human_criterion=[-1.0, -0.5, 0.0], ai_criterion=[2.0, 3.0, 2.5])
    p = detector.predict_human_proba([-1.0, 2.8, np.nan])
    assert p[0] > 0.5 > p[1] and p[2] == 0.0


class BagOfLetters:
    def encode(self, texts, **kwargs):
        out = np.zeros((len(texts), 26))
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_yardstick_with_base_model_signals(tiny):
    """The GPU path end to end on the tiny model: Fast-DetectGPT joins the detectors and the base
    model's perplexity joins the fluency bounds."""
    model, tokenizer = tiny
    rows = pd.DataFrame(generate_pairs(30, seed=9)).rename(columns={"LLM": "ai"})
    rows = rows.assign(human=rows["human"].str[:300], ai=rows["ai"].str[:300])
    signals = SignalCache(model, tokenizer, batch_size=8)
    yardstick = build_yardstick(rows[:20], rows[20:], BagOfLetters(), signals=signals)
    assert yardstick.detectors == ["tfidf", "fast_detect"] and "lm_perplexity" in yardstick.fluency.bounds
    assert set(yardstick.quality) == {"tfidf", "fast_detect"} and 0 <= yardstick.quality["fast_detect"]["roc_auc"] <= 1
    outputs = rows["human"][20:].tolist()
    scored = yardstick.score(BagOfLetters(), rows["ai"][20:], outputs, signals=signals(outputs))
    assert {"p_human_fast_detect", "lm_perplexity"} <= set(scored.columns)
    assert (scored["human_proba"] <= scored["p_human_tfidf"] + 1e-12).all()  # the most sceptical detector counts
    with pytest.raises(UserError, match="base model"):
        yardstick.score(BagOfLetters(), rows["ai"][20:], outputs)
