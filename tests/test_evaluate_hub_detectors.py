"""Extra Hub detectors (hub_detectors): label reading, and a local classifier joining the verdict."""

import numpy as np
import pandas as pd
import pytest

from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.evaluate.hub_detectors import HubDetector, human_label, parse_hub_detectors
from ai2human.evaluate.yardstick import Yardstick, build_yardstick
from test_evaluate_zero_shot import BagOfLetters


def test_labels_say_which_class_is_human():
    assert human_label({0: "Fake", 1: "Real"}) == (1, True)
    assert human_label({"0": "human-written", "1": "AI"}) == (0, True)
    assert human_label({0: "ChatGPT", 1: "other"}) == (0, False)
    with pytest.raises(UserError, match="which label means human"):
        human_label({0: "LABEL_0", 1: "LABEL_1"})
    assert parse_hub_detectors(" org/a, ,org/b ") == ["org/a", "org/b"] and parse_hub_detectors("") == []


@pytest.fixture(scope="module")
def local_classifier(tmp_path_factory):
    """A random-weight Qwen2 sequence classifier with labels Fake/Real, saved like a Hub model."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ai2human.models.loading import load_tokenizer
    from ai2human.models.tiny import resolve_model_name

    tokenizer = load_tokenizer("local:tiny-qwen2")
    config = AutoConfig.from_pretrained(resolve_model_name("local:tiny-qwen2"), num_labels=2,
                                        id2label={0: "Fake", 1: "Real"}, label2id={"Fake": 0, "Real": 1},
                                        pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("hub") / "org-detector"
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_hub_detector_joins_the_yardstick_and_is_not_pickled_with_weights(local_classifier, tmp_path):
    rows = pd.DataFrame(generate_pairs(30, seed=6)).rename(columns={"LLM": "ai"})
    yardstick = build_yardstick(rows[:20], rows[20:], BagOfLetters(), hub_detectors=[local_classifier])
    key = f"hub:{local_classifier}"
    assert yardstick.detectors == ["tfidf", key] and 0 <= yardstick.quality[key]["roc_auc"] <= 1
    scored = yardstick.score(BagOfLetters(), rows["ai"][20:], rows["human"][20:])
    p = scored[f"p_human_{key}"]
    assert ((p >= 0) & (p <= 1)).all()
    voting = scored[[f"p_human_{d}" for d in yardstick.voting]]
    assert (scored["judged_human"] == (voting >= 0.5).all(axis=1)).all()
    # a near-chance detector is reported but does not vote; a good one does
    yardstick.quality[key]["roc_auc"] = 0.55
    assert yardstick.voting == ["tfidf"]
    yardstick.quality[key]["roc_auc"] = 0.95
    assert yardstick.voting == ["tfidf", key]
    both = yardstick.score(BagOfLetters(), rows["ai"][20:], rows["human"][20:])
    assert (both["judged_human"] == ((both["p_human_tfidf"] >= 0.5) & (both[f"p_human_{key}"] >= 0.5))).all()
    path = yardstick.save(tmp_path / "y.joblib")
    assert path.stat().st_size < 2_000_000  # no model weights inside
    again = Yardstick.load(path).score(BagOfLetters(), rows["ai"][20:], rows["human"][20:])
    np.testing.assert_allclose(again[f"p_human_{key}"], p, rtol=1e-5)


def test_unreachable_hub_detector_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot be loaded"):
        HubDetector(str(tmp_path / "no-such-model"))
