"""The TF-IDF detector and how detectors are measured (ROC AUC, TPR at 1% FPR)."""

import numpy as np
import pytest

from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.evaluate.detector import Detector, detection_quality, detector_reliability, evaluate_detector, train_detector


@pytest.fixture(scope="module")
def pairs():
    rows = generate_pairs(120, seed=5)
    return [r["human"] for r in rows], [r["LLM"] for r in rows]


@pytest.fixture(scope="module")
def detector(pairs):
    human, ai = pairs
    return train_detector(human[:80], ai[:80], seed=0)


def test_detector_separates_held_out_human_and_ai(detector, pairs):
    human, ai = pairs
    result = evaluate_detector(detector, human[80:], ai[80:])
    assert result["n_human"] == 40 and result["n_ai"] == 40
    assert result["accuracy"] > 0.9 and result["roc_auc"] > 0.95 and result["tpr_at_1pct_fpr"] > 0.9
    proba = detector.predict_human_proba(human[80:85] + ai[80:85])
    assert proba.shape == (10,) and ((proba >= 0) & (proba <= 1)).all()
    assert proba[:5].mean() > proba[5:].mean()


def test_detector_near_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["apple", "pear", "plum", "fig", "kiwi", "lime"], 12)) for _ in range(80)]
    chance = train_detector(texts[:30], texts[30:60])
    result = evaluate_detector(chance, texts[60:70], texts[70:80])
    assert 0.2 < result["roc_auc"] < 0.8
    assert "near chance" in detector_reliability(0.55) and "near chance" in detector_reliability(float("nan"))
    assert "strong" in detector_reliability(0.97)


def test_tpr_at_1pct_fpr_is_read_at_the_strict_threshold():
    # 100 AI texts; one scores above every human text: at most 1% FPR only the humans above it pass.
    ai = np.r_[np.linspace(0.0, 0.4, 99), 0.95]
    human = np.r_[np.full(50, 0.9), np.full(50, 0.99)]
    quality = detection_quality(human, ai)
    assert quality["tpr_at_1pct_fpr"] == pytest.approx(1.0)  # 1 AI text of 100 allowed through: 0.9 passes too
    quality = detection_quality(human, np.r_[ai, 0.96])  # two AI texts above 0.9: only the 0.99 group passes at <=1%
    assert quality["tpr_at_1pct_fpr"] == pytest.approx(0.5)
    assert quality["roc_auc"] < 1.0


def test_detector_save_load_roundtrip(detector, pairs, tmp_path):
    texts = pairs[0][:3] + pairs[1][:3]
    path = detector.save(tmp_path / "sub" / "detector.joblib")
    loaded = Detector.load(path)
    np.testing.assert_allclose(loaded.predict_human_proba(texts), detector.predict_human_proba(texts))
    assert loaded.info["train_human"] == 80


def test_detector_load_refuses_missing_foreign_or_corrupt_files(detector, tmp_path):
    import joblib

    with pytest.raises(UserError, match="no detector"):
        Detector.load(tmp_path / "missing.joblib")
    joblib.dump({"not": "a detector"}, tmp_path / "other.joblib")
    with pytest.raises(UserError, match="not an ai2human Detector"):
        Detector.load(tmp_path / "other.joblib")
    whole = detector.save(tmp_path / "whole.joblib").read_bytes()
    (tmp_path / "cut.joblib").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="unreadable"):
        Detector.load(tmp_path / "cut.joblib")


def test_detector_needs_both_classes():
    with pytest.raises(UserError):
        train_detector([], ["some AI text"])
