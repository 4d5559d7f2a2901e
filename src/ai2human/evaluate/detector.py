"""The supervised AI-text detector: TF-IDF word and character n-grams + logistic regression.

Trained on the training split only, it gives each text a probability of being human-written. It
works offline and is what the chat app and ``python -m ai2human.score`` load (``detector.joblib``).
``detection_quality`` measures any detector's scores the same way (ROC AUC, TPR at 1% FPR), so the
TF-IDF and the zero-shot detector sit side by side in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ai2human.errors import UserError
from ai2human.evaluate import saved

HUMAN_THRESHOLD = 0.5  # a text is "judged human" when a detector gives it at least this probability
LOW_FPR = 0.01  # the operating point detectors are compared at: 1% of AI texts passed as human


@dataclass
class Detector:
    """A fitted scikit-learn pipeline whose positive class (1) is "human-written"."""

    pipeline: object
    info: dict = field(default_factory=dict)

    def predict_human_proba(self, texts) -> np.ndarray:
        """Probability that each text is human-written, in [0, 1]."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros(0)
        classes = list(self.pipeline.classes_)
        return self.pipeline.predict_proba(self.inputs(texts))[:, classes.index(1)]

    def inputs(self, texts: list[str]):
        """What the pipeline takes: the texts themselves (its first step vectorises them)."""
        return texts

    def save(self, path: str | Path) -> Path:
        return saved.save(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Detector":
        return saved.load(path, Detector,
                          f"no detector at {path}; run the evaluation notebook first (it writes run_dir/detector.joblib)")


def train_detector(human_texts, ai_texts, seed: int = 0) -> Detector:
    """Fit the human-vs-AI detector on the training split's texts (label 1 = human).

    Word 1-2 grams catch vocabulary ("delve", "tapestry"); character 1-4 grams over the raw text
    (not word-bounded) keep newlines and markdown, so "\\n\\n" paragraphs and "**" count too.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    human, ai = [str(t) for t in human_texts], [str(t) for t in ai_texts]
    if not human or not ai:
        raise UserError("the detector needs human and AI training texts; the training split is empty")
    min_df = 2 if len(human) + len(ai) >= 50 else 1  # tiny test sets would otherwise keep no n-gram
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, max_features=100_000, sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w+\b|[^\w\s]+")),
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 4), min_df=min_df, max_features=200_000,
                                      sublinear_tf=True, lowercase=False)),
        ]
    )
    pipeline = Pipeline([("features", features), ("classifier", LogisticRegression(C=4.0, max_iter=2000, random_state=seed))])
    pipeline.fit(human + ai, np.r_[np.ones(len(human), int), np.zeros(len(ai), int)])
    return Detector(pipeline, {"train_human": len(human), "train_ai": len(ai), "seed": seed})


def detection_quality(human_proba_human, human_proba_ai) -> dict:
    """How well scores separate held-out human texts (should score high) from AI texts (low).

    ``tpr_at_1pct_fpr``: the share of human texts passed as human at the threshold that lets at
    most 1% of the AI texts through, the operating point Fast-DetectGPT's paper reports.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    human, ai = np.asarray(human_proba_human, float), np.asarray(human_proba_ai, float)
    labels = np.r_[np.ones(len(human), int), np.zeros(len(ai), int)]
    scores = np.r_[human, ai]
    out = {"accuracy": float(np.mean((scores >= HUMAN_THRESHOLD) == labels)) if len(labels) else float("nan"),
           "roc_auc": float("nan"), "tpr_at_1pct_fpr": float("nan"), "n_human": len(human), "n_ai": len(ai)}
    if len(human) and len(ai):
        out["roc_auc"] = float(roc_auc_score(labels, scores))
        fpr, tpr, _ = roc_curve(labels, scores)
        out["tpr_at_1pct_fpr"] = float(tpr[fpr <= LOW_FPR].max())
    return out


def evaluate_detector(detector, human_texts, ai_texts) -> dict:
    """A detector's accuracy, ROC AUC and TPR at 1% FPR on held-out human and AI texts."""
    human, ai = [str(t) for t in human_texts], [str(t) for t in ai_texts]
    return detection_quality(detector.predict_human_proba(human), detector.predict_human_proba(ai))


def detector_reliability(roc_auc: float) -> str:
    """How much the detector's verdicts can be trusted, in words (shared by the notebook and verdict)."""
    if not roc_auc == roc_auc or roc_auc < 0.7:  # nan or near chance
        return "near chance: its 'judged human' shares say little about the rewrites"
    if roc_auc < 0.9:
        return "a weak separator: read its 'judged human' shares as rough"
    return "a strong separator: a rewrite it judges human has lost the AI markers it learned"
