"""One per-text verdict and one score for any rewrite, with everything it was calibrated on.

``success`` = judged human by every usable detector AND fluent AND meaning kept AND nothing
invented AND not empty AND not cut off. ``score`` in [0, 1], in the spirit of Krishna et al.
2020's J-score: P(human) (the most sceptical detector's) x meaning (``meaning.py``) x fluent (0/1),
per text; a system's score is the mean. ``build_yardstick`` fits and calibrates it on a run's
training and validation splits; it is saved in the run folder (``rundir.YARDSTICK``) so the chat
app and ``python -m ai2human.score`` judge any text exactly as the evaluation did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.errors import UserError
from ai2human.evaluate import saved
from ai2human.evaluate.detector import HUMAN_THRESHOLD, Detector, detection_quality, evaluate_detector, train_detector
from ai2human.evaluate.entities import ENTITY_KINDS, added_entities
from ai2human.evaluate.fluency import FluencyCalibration, NgramLM, calibrate_fluency, judge_fluency, measure
from ai2human.evaluate.meaning import MeaningCalibration, calibrate_meaning, meaning_frame
from ai2human.evaluate.zero_shot import ZeroShotDetector

MIN_VOTING_AUC = 0.7  # below this validation ROC AUC a detector is near chance (detector_reliability's bar)
# The success conditions, in the order a failure is explained; each is a boolean column.
CONDITIONS = {"judged_human": "are judged AI-written", "fluent": "are not fluent", "meaning_kept": "lose the meaning",
              "invents_nothing": "invent details", "not_empty": "are empty", "not_truncated": "are cut off"}


def word_count(text: str) -> int:
    return len(str(text).split())


def length_ratio(sources, outputs) -> np.ndarray:
    """Output words / input words per pair (nan where the input has no words)."""
    src = np.array([word_count(s) for s in sources], dtype=float)
    out = np.array([word_count(o) for o in outputs], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(src > 0, out / np.where(src > 0, src, 1), np.nan)


@dataclass
class Yardstick:
    detector: Detector
    lm: NgramLM
    fluency: FluencyCalibration
    meaning: MeaningCalibration
    zero_shot: ZeroShotDetector | None = None
    quality: dict = field(default_factory=dict)  # detector name -> detection_quality on the validation split
    info: dict = field(default_factory=dict)
    hub: list = field(default_factory=list)  # hub_detectors.HubDetector, each a further detector to pass

    @property
    def detectors(self) -> list[str]:
        return ["tfidf"] + (["fast_detect"] if self.zero_shot else []) + [d.key for d in self.hub]

    @property
    def voting(self) -> list[str]:
        """The detectors a rewrite must pass: all but a zero-shot or hub detector that is near chance
        on this data's validation split (it would fail the human texts themselves at random). The
        TF-IDF detector always votes: if it is weak, the controls show it."""
        return [d for d in self.detectors
                if d == "tfidf" or self.quality.get(d, {}).get("roc_auc", 1.0) >= MIN_VOTING_AUC]

    def calibration(self) -> dict:
        """Every bar the verdict uses, for eval_metrics.json."""
        return {"fluency": self.fluency.to_dict(), "meaning": self.meaning.to_dict(), "human_threshold": HUMAN_THRESHOLD,
                "detectors": self.detectors, "voting": self.voting, "zero_shot": None if self.zero_shot is None else vars(self.zero_shot)}

    def score(self, embedder, sources, outputs, truncated=None, signals: dict | None = None) -> pd.DataFrame:
        """Every component, ``success`` and ``score`` per text, in input order.

        ``signals``: the base model's ``fast_detect`` and ``lm_perplexity`` for ``outputs``
        (``zero_shot.SignalCache``); without them only the offline checks run, and a yardstick
        calibrated with the zero-shot detector refuses to judge (its verdict would be weaker).
        """
        sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
        if self.zero_shot is not None and signals is None:
            raise UserError("this run's yardstick uses the base model's signals (Fast-DetectGPT, perplexity); "
                            "pass them, or score with a run evaluated without zero_shot_detector")
        frame = pd.DataFrame({"p_human_tfidf": self.detector.predict_human_proba(outputs)})
        if self.zero_shot is not None:
            frame["p_human_fast_detect"] = self.zero_shot.predict_human_proba(signals["fast_detect"])
        for detector in self.hub:
            frame[f"p_human_{detector.key}"] = detector.predict_human_proba(outputs)
        per_detector = frame[[f"p_human_{d}" for d in self.voting]]
        frame["human_proba"] = per_detector.min(axis=1)
        frame["judged_human"] = (per_detector >= HUMAN_THRESHOLD).all(axis=1)
        measured = measure(outputs, self.lm, None if signals is None or self.zero_shot is None else signals["lm_perplexity"])
        frame = pd.concat([frame, judge_fluency(measured, self.fluency), meaning_frame(embedder, sources, outputs, self.meaning)], axis=1)
        added = [added_entities(s, o) for s, o in zip(sources, outputs)]
        for kind in ENTITY_KINDS:
            frame[f"added_{kind}"] = [a[kind] for a in added]
        frame["n_added"] = [sum(len(a[k]) for k in ENTITY_KINDS) for a in added]
        frame["invents_nothing"] = frame["n_added"] == 0
        frame["not_empty"] = [bool(o.strip()) for o in outputs]
        frame["not_truncated"] = ~np.asarray(truncated if truncated is not None else [False] * len(outputs), bool)
        frame["length_ratio"] = length_ratio(sources, outputs)
        frame["success"] = frame[list(CONDITIONS)].all(axis=1)
        frame["score"] = frame["human_proba"] * frame["meaning"] * frame["fluent"].astype(float)
        frame["failure"] = [", ".join(why for c, why in CONDITIONS.items() if not row[c]) for _, row in frame.iterrows()]
        return frame

    def save(self, path: str | Path) -> Path:
        return saved.save(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Yardstick":
        path = Path(path)
        return saved.load(path, Yardstick,
                          f"{path.parent} has no evaluation ({path.name} is missing); run the evaluation notebook on it first")


def build_yardstick(train: pd.DataFrame, val: pd.DataFrame, embedder, seed: int = 0, signals=None,
                    min_similarity: float = 0.0, hub_detectors=()) -> Yardstick:
    """Fit on the training split's texts, calibrate on the validation split's (columns ``human``, ``ai``).

    ``signals``: a callable texts -> base-model signals (``zero_shot.SignalCache``); with it the
    Fast-DetectGPT detector and the base model's perplexity join the verdict. ``min_similarity``
    raises the meaning bar above the calibrated one (never lowers it); ``hub_detectors`` lists Hub
    classifiers that join the detectors (``hub_detectors.py``).
    """
    from ai2human.evaluate.hub_detectors import HubDetector

    human, ai = val["human"].astype(str).tolist(), val["ai"].astype(str).tolist()
    if len(val) < 2 or train.empty:
        raise UserError("the yardstick needs training rows and at least two validation rows; raise val_size or eval data")
    detector = train_detector(train["human"], train["ai"], seed=seed)
    lm = NgramLM.fit(train["human"].astype(str).tolist() + train["ai"].astype(str).tolist())
    quality = {"tfidf": evaluate_detector(detector, human, ai)}
    zero_shot, perplexity = None, None
    if signals is not None:
        s_human, s_ai = signals(human), signals(ai)
        zero_shot = ZeroShotDetector.calibrate(s_human["fast_detect"], s_ai["fast_detect"])
        quality["fast_detect"] = detection_quality(zero_shot.predict_human_proba(s_human["fast_detect"]),
                                                   zero_shot.predict_human_proba(s_ai["fast_detect"]))
        perplexity = np.r_[s_human["lm_perplexity"], s_ai["lm_perplexity"]]
    fluency = calibrate_fluency(measure(human + ai, lm, perplexity))
    meaning = calibrate_meaning(embedder, ai, human)
    if min_similarity > meaning.unrelated:
        meaning = MeaningCalibration(min_similarity, max(meaning.reference, min_similarity + 0.05))
    hub = [HubDetector(model_id) for model_id in hub_detectors]
    quality |= {d.key: evaluate_detector(d, human, ai) for d in hub}
    info = {"train_rows": len(train), "calibration_rows": len(val), "seed": seed}
    return Yardstick(detector, lm, fluency, meaning, zero_shot, quality, info, hub)


DETECTOR_NAMES = {"tfidf": "TF-IDF detector", "fast_detect": "Fast-DetectGPT (base model, zero-shot)"}
