"""The held-out judge: a human-vs-AI detector the preference stage's reward never saw.

Preference training (``ai2human.prefer``) pushes the model towards what the reward's TF-IDF
detector calls human. A rise in reward proves little if it is judged by that same detector: the
model may have learnt the detector's blind spots (reward hacking) rather than human writing. This
judge differs from it twice over:

- **other rows**: it trains only on the training split's judge half (``data.halves``), the reward's
  detector only on the other half;
- **other features**: stylometry, not word and character n-grams: how long sentences are and how
  much they vary, word length, vocabulary richness, punctuation, function-word and pronoun rates,
  contractions, paragraphs, markdown, readability. No feature names a content word, so a rewrite
  cannot pass by swapping the words the TF-IDF detector learnt.

On GPU runs the zero-shot Fast-DetectGPT detector (``zero_shot.py``) is the second held-out signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ai2human.data.halves import reward_judge_halves
from ai2human.eda.style import style_features, words
from ai2human.errors import UserError
from ai2human.evaluate.detector import Detector, detection_quality

# The style statistics shared with the EDA, less llm_words_per_100w: a word list is what the
# n-gram detector already sees, and the judge must not share its evidence.
STYLE_KEPT = ("blank_line_paragraphs", "markdown", "paragraphs", "sentence_len_mean", "sentence_len_std",
              "type_token_ratio", "contractions_per_100w", "readability")
PUNCTUATION = {"commas": ",", "semicolons": ";", "colons": ":", "exclamations": "!", "questions": "?",
               "dashes": "-\u2013\u2014", "parentheses": "()", "quotes": "\"\u201c\u201d", "ellipses": "\u2026"}
# Function words by kind (closed classes): their rates are the classic authorship signal
# (Mosteller & Wallace), and they say how a text is written, not what it is about.
FUNCTION_WORDS = {
    "first_person": "i me my mine we us our ours myself",
    "second_person": "you your yours yourself",
    "third_person": "he she him her his hers they them their it its",
    "articles": "a an the",
    "conjunctions": "and but or so yet because although though while whereas",
    "prepositions": "of in on at to for with by from about into through over under",
    "auxiliaries": "is are was were be been being have has had do does did will would can could should may might must",
    "hedges": "maybe perhaps probably like just really kind sort actually",
    "negations": "not no never nothing nobody n't",
}
_FUNCTION_SETS = {kind: frozenset(listed.split()) for kind, listed in FUNCTION_WORDS.items()}
FEATURES = (*STYLE_KEPT, "log_words", "word_len_mean", "word_len_std", "long_word_share", "capital_share",
            "digit_share", *(f"{k}_per_100w" for k in PUNCTUATION), *(f"{k}_per_100w" for k in FUNCTION_WORDS))


def judge_features(text: str) -> dict[str, float]:
    """The judge's FEATURES of one text (rates per 100 words; 0 where a text has no words)."""
    text = str(text)
    style = style_features(text)
    tokens = words(text)
    n = len(tokens)
    per_100 = 100.0 / n if n else 0.0
    lengths = np.array([len(w) for w in tokens], dtype=float)
    lower = [w.lower() for w in tokens]
    row = {k: style[k] for k in STYLE_KEPT}
    row |= {
        "log_words": float(np.log1p(n)),
        "word_len_mean": float(lengths.mean()) if n else 0.0,
        "word_len_std": float(lengths.std()) if n else 0.0,
        "long_word_share": float((lengths >= 7).mean()) if n else 0.0,
        "capital_share": sum(w[0].isupper() for w in tokens) / n if n else 0.0,
        "digit_share": sum(w[0].isdigit() for w in tokens) / n if n else 0.0,
    }
    row |= {f"{k}_per_100w": sum(text.count(c) for c in chars) * per_100 for k, chars in PUNCTUATION.items()}
    for kind, listed in _FUNCTION_SETS.items():
        hits = sum(w in listed or (kind == "negations" and w.endswith("n't")) for w in lower)
        row[f"{kind}_per_100w"] = hits * per_100
    return row


def feature_table(texts) -> pd.DataFrame:
    """One row of FEATURES per text, in input order."""
    return pd.DataFrame([judge_features(t) for t in texts], columns=list(FEATURES), dtype=float)


@dataclass
class HeldOutJudge(Detector):
    """A fitted scikit-learn pipeline over ``feature_table``; class 1 is "human-written".

    ``info["rows"]`` lists the file row numbers it was trained on (the ``row`` column), so anyone
    can check that none of them is a row the reward's detector was trained on.
    """

    quality: dict = field(default_factory=dict)  # detection_quality on the validation split

    def inputs(self, texts: list[str]):
        return feature_table(texts).to_numpy()


def fit_judge(judge_rows: pd.DataFrame, val: pd.DataFrame, seed: int = 0) -> HeldOutJudge:
    """Fit on ``judge_rows``' human (1) and AI (0) texts, then measure on ``val``'s (columns ``human``, ``ai``).

    Logistic regression on standardised features: one weight per feature suits the few hundred
    texts a judge half may hold, and graded probabilities are what the mean P(human) averages.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if len(judge_rows) < 2:
        raise UserError(f"the held-out judge needs at least 2 training rows, got {len(judge_rows)}; use more data")
    human, ai = judge_rows["human"].astype(str).tolist(), judge_rows["ai"].astype(str).tolist()
    features = feature_table(human + ai).to_numpy()
    labels = np.r_[np.ones(len(human), int), np.zeros(len(ai), int)]
    pipeline = Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression(C=1.0, max_iter=2000, random_state=seed))])
    pipeline.fit(features, labels)
    judge = HeldOutJudge(pipeline, info={"train_rows": len(judge_rows), "seed": seed, "features": list(FEATURES),
                                         "rows": [int(r) for r in judge_rows["row"]] if "row" in judge_rows else []})
    judge.quality = detection_quality(judge.predict_human_proba(val["human"]), judge.predict_human_proba(val["ai"]))
    return judge


def fit_judge_on_split(train: pd.DataFrame, val: pd.DataFrame, split_seed: int, seed: int = 0) -> HeldOutJudge:
    """The judge of an evaluation: trained on the judge half of ``train`` (the half the reward's
    detector never saw; ``data.halves`` with the same ``split_seed`` as the preference stage)."""
    _, judge_rows = reward_judge_halves(train, split_seed)
    return fit_judge(judge_rows, val, seed)

