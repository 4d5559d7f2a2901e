"""The reward preference training maximises: the evaluation's per-text score, graded, reward side only.

The evaluation's ``score`` (``evaluate.yardstick``) is P(human) x meaning x fluent (0/1), and a
rewrite only succeeds when nothing is invented, it is not empty and not cut off. The reward asks
the same questions with the same fitted checks, but only with signals the held-out judge does not
use: its TF-IDF detector and its fluency n-gram model are fitted on ``reward_rows`` alone (one half
of the training split, ``data.halves.reward_judge_halves``; the other half is the judge's), and its
fluency and meaning bars are calibrated on the validation split exactly as the yardstick's are
(``build_yardstick`` does the fitting: one definition of each check).

Why graded rather than the yardstick's score itself: DPO learns from *differences* between samples
of one input. The yardstick's fluency is 0/1 and its meaning is 0 below the calibrated bar, so all
samples of a weak model (gibberish, off-topic) score exactly 0 and every pair would be a tie: no
signal where it is needed most. Each component is therefore made continuous where the yardstick is
flat, and equals the yardstick's where it is not:

- fluency: 1 inside every calibrated bound (as the yardstick's ``fluent``), else
  ``exp(-excess / scale)`` per bound, where ``excess`` is how far the measurement sits outside it
  (in share points, or in log-perplexity), so a text with fewer made-up words ranks higher;
- meaning: the yardstick's ``meaning`` where that is above ``MEANING_FLOOR``, else a floor that
  decays with how far the similarity sits below the "unrelated texts" bar;
- invented details: ``INVENT_FACTOR`` per invented number, date, name or quote (not a veto);
- cut off: ``TRUNCATED_FACTOR``; empty: 0.

A rewrite that passes every check (meaning above the floor) has ``reward == score``; the reward
never exceeds 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.evaluate import saved
from ai2human.evaluate.yardstick import Yardstick, build_yardstick

# exp(-1) of fluency per this much excess: a share 0.25 past its bound, or perplexity e^2 (7.4) times
# its bound. Gentle enough that gibberish keeps a measurable fluency (a random-weight model's
# samples sit at 40% made-up words and ~6,000x the perplexity bound), so the reward's mean over
# many samples is not decided by a single lucky one.
FLUENCY_SCALES = {"repeated_trigram_share": 0.25, "distinct_2": 0.25, "nonword_share": 0.25,
                  "ngram_perplexity": 2.0, "lm_perplexity": 2.0}
LOG_SCALED = {"ngram_perplexity", "lm_perplexity"}
MEANING_FLOOR = 0.05  # meaning at the "unrelated" bar; below it decays by exp(-distance / MEANING_DECAY)
MEANING_DECAY = 0.1  # cosine similarity; fixed, since the calibrated span can be a few hundredths
INVENT_FACTOR = 0.7  # per invented detail: one invented name costs 30%, three cost 66%
TRUNCATED_FACTOR = 0.5  # a cut-off text keeps half: it may end mid-sentence, but its start may be fine
COLUMNS = ["reward", "human_proba", "fluency_soft", "meaning_soft", "invent_factor", "truncation_factor",
           "similarity", "meaning", "fluent", "n_added", "not_empty", "not_truncated", "score", "success"]


def soft_fluency(measured: pd.DataFrame, bounds: dict) -> np.ndarray:
    """Per text: 1 inside every bound, ``exp(-excess / scale)`` multiplied over the bounds it breaks."""
    log_fluency = np.zeros(len(measured))
    for column, bound in bounds.items():
        if column not in measured:
            continue
        values = measured[column].astype(float).to_numpy()
        limit = float(bound["limit"])
        if column in LOG_SCALED:  # perplexities span orders of magnitude: compare ratios
            values, limit = np.log(np.maximum(values, 1e-12)), np.log(max(limit, 1e-12))
        excess = values - limit if bound["side"] == "high" else limit - values
        excess = np.nan_to_num(np.maximum(excess, 0.0), nan=np.inf)
        log_fluency -= excess / FLUENCY_SCALES.get(column, 0.1)
    return np.exp(log_fluency)


def soft_meaning(similarity, meaning, nearest, unrelated: float) -> np.ndarray:
    """The yardstick's ``meaning`` where above ``MEANING_FLOOR``; below, a floor decaying with the
    distance under the unrelated bar (so a closer miss still ranks higher). An output nearer to
    another input than to its own stays at or below the floor."""
    similarity = np.asarray(similarity, float)
    floor = MEANING_FLOOR * np.exp(np.minimum(similarity - unrelated, 0.0) / MEANING_DECAY)
    return np.where(np.asarray(nearest, bool), np.maximum(np.asarray(meaning, float), floor), floor)


@dataclass
class Reward:
    """The reward's fitted checks (a yardstick fitted on the reward half) and what they were fitted on."""

    yardstick: Yardstick
    info: dict = field(default_factory=dict)

    def score(self, embedder, sources: list[str], outputs: list[str], truncated: list[bool] | None = None) -> pd.DataFrame:
        """One row per output, in order (columns ``COLUMNS``): ``reward`` in [0, 1], its factors
        (``human_proba``: the reward detector's P(human); ``fluency_soft``, ``meaning_soft``,
        ``invent_factor``, ``truncation_factor``), and the strict yardstick columns computed with the
        reward-side checks (``fluent``, ``meaning``, ``n_added``, ``score``, ``success``...).

        Meaning is judged against all ``sources`` at once (nearest input among them), as in the
        evaluation; repeating a source for several samples of it is fine (ties count as own)."""
        sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
        if len(sources) != len(outputs):
            raise ValueError(f"{len(sources)} sources but {len(outputs)} outputs")
        if not outputs:
            return pd.DataFrame(columns=COLUMNS)
        strict = self.yardstick.score(embedder, sources, outputs, truncated)
        calibration = self.yardstick.meaning
        out = pd.DataFrame({
            "human_proba": strict["human_proba"].astype(float),
            "fluency_soft": soft_fluency(strict, self.yardstick.fluency.bounds),
            "meaning_soft": soft_meaning(strict["similarity"], strict["meaning"], strict["nearest_is_input"],
                                         calibration.unrelated),
            "invent_factor": INVENT_FACTOR ** strict["n_added"].astype(float),
            "truncation_factor": np.where(strict["not_truncated"], 1.0, TRUNCATED_FACTOR),
        })
        product = out.prod(axis=1) * strict["not_empty"].astype(float)
        out.insert(0, "reward", np.clip(product.to_numpy(), 0.0, 1.0))
        for column in ["similarity", "meaning", "fluent", "n_added", "not_empty", "not_truncated", "score", "success"]:
            out[column] = strict[column].to_numpy()
        return out[COLUMNS]

    def save(self, path: str | Path) -> Path:
        return saved.save(self, path)


def build_reward(reward_rows: pd.DataFrame, val: pd.DataFrame, embedder, seed: int) -> Reward:
    """Fit the reward's detector and fluency model on ``reward_rows`` only (columns ``human``,
    ``ai``: the reward half of the training split) and calibrate on ``val``, as the yardstick does."""
    yardstick = build_yardstick(reward_rows, val, embedder, seed=seed)
    return Reward(yardstick, {"reward_rows": len(reward_rows), "calibration_rows": len(val), "seed": seed,
                              "meaning_floor": MEANING_FLOOR, "meaning_decay": MEANING_DECAY, "invent_factor": INVENT_FACTOR,
                              "truncated_factor": TRUNCATED_FACTOR, "fluency_scales": FLUENCY_SCALES})


def load_reward(path: str | Path) -> Reward:
    """The reward a preference stage saved (``rundir.REWARD``); one clear line when missing or broken."""
    path = Path(path)
    return saved.load(path, Reward, f"{path.parent} has no preference-stage reward ({path.name} is missing); "
                                    "run the prefer notebook on it first")
