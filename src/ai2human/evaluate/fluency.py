"""Fluency and degeneration per text, offline on a CPU, calibrated on real texts.

A detector trained on human vs AI text learns "no AI markers", not "written by a person": random
gibberish and ".\\n.\\n." pass it. These checks catch what it misses:

- ``repeated_trigram_share``: the share of token trigrams that repeat an earlier one (loops);
- ``distinct_2``: unique token bigrams / bigrams (low = the same few pairs over and over);
- ``nonword_share``: the share of words that are neither English (``wordfreq``) nor in the
  training texts' vocabulary (names of the data), i.e. made-up tokens;
- ``ngram_perplexity``: a smoothed word bigram model fitted on the training split's real texts
  (human and AI); word salad and shuffled text score far above real prose;
- ``lm_perplexity`` (GPU runs): the base model's own perplexity of the text (``zero_shot.py``).

``calibrate_fluency`` sets each bound from the validation split's real texts: a text is fluent
when every measurement sits inside the range real texts occupy (their 1st-99th percentile, with
10% slack), and it has at least one word.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*|[^\w\s]")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
DISCOUNT = 0.75  # absolute discounting (Ney et al.), the usual value for bigram models
QUANTILE, SLACK = 0.99, 0.10
# measurement -> which side of the real range is the bad one
CHECKS = {"repeated_trigram_share": "high", "distinct_2": "low", "nonword_share": "high",
          "ngram_perplexity": "high", "lm_perplexity": "high"}
CHECK_WORDS = {"repeated_trigram_share": "repeats itself", "distinct_2": "loops over the same word pairs",
               "nonword_share": "made-up words", "ngram_perplexity": "word order unlike real text",
               "lm_perplexity": "the base model finds it implausible", "no_words": "no words"}


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(str(text))]


@lru_cache(maxsize=200_000)
def is_english_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") > 0


@dataclass
class NgramLM:
    """Interpolated absolute-discounting word bigram model; words seen once in training are <unk>."""

    unigrams: dict = field(default_factory=dict)
    bigrams: dict = field(default_factory=dict)  # context -> {word: count}
    context_totals: dict = field(default_factory=dict)
    total: int = 0

    @classmethod
    def fit(cls, texts) -> "NgramLM":
        counts = Counter(t for text in texts for t in tokens(text))
        vocab = {w for w, c in counts.items() if c >= 2}
        lm = cls()
        unigrams: Counter = Counter()
        bigrams: dict = defaultdict(Counter)
        for text in texts:
            seq = ["<s>"] + [t if t in vocab else "<unk>" for t in tokens(text)] + ["</s>"]
            unigrams.update(seq[1:])
            for a, b in zip(seq, seq[1:]):
                bigrams[a][b] += 1
        lm.unigrams, lm.total = dict(unigrams), sum(unigrams.values())
        lm.bigrams = {a: dict(c) for a, c in bigrams.items()}
        lm.context_totals = {a: sum(c.values()) for a, c in bigrams.items()}
        return lm

    @property
    def vocabulary(self) -> set[str]:
        return set(self.unigrams) - {"<unk>", "</s>"}

    def _unigram(self, word: str) -> float:
        return (self.unigrams.get(word, 0) + 1) / (self.total + len(self.unigrams) + 1)  # add-one

    def perplexity(self, text: str) -> float:
        """exp(mean negative log-probability per token, end of text included); inf for no tokens."""
        words = tokens(text)
        if not words:
            return float("inf")
        seq = ["<s>"] + [w if w in self.unigrams else "<unk>" for w in words] + ["</s>"]
        log_prob = 0.0
        for a, b in zip(seq, seq[1:]):
            followers, total = self.bigrams.get(a), self.context_totals.get(a, 0)
            if not followers:
                p = self._unigram(b)
            else:
                seen = max(followers.get(b, 0) - DISCOUNT, 0.0) / total
                p = seen + DISCOUNT * len(followers) / total * self._unigram(b)
            log_prob += math.log(p)
        return math.exp(-log_prob / (len(seq) - 1))


def text_measurements(text: str, lm: NgramLM, known_words: set[str] | None = None) -> dict:
    """Every fluency measurement of one text (perplexity from ``lm``)."""
    toks = tokens(text)
    words = [w.lower() for w in WORD.findall(str(text))]
    trigrams = list(zip(toks, toks[1:], toks[2:]))
    bigrams = list(zip(toks, toks[1:]))
    known = lm.vocabulary if known_words is None else known_words
    nonwords = sum(1 for w in words if w not in known and not is_english_word(w))
    return {
        "n_words": len(words),
        "repeated_trigram_share": 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0,
        "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 1.0,
        "nonword_share": nonwords / len(words) if words else 1.0,
        "ngram_perplexity": lm.perplexity(text),
    }


def measure(texts, lm: NgramLM, lm_perplexity=None) -> pd.DataFrame:
    """``text_measurements`` for many texts; ``lm_perplexity`` (base model) added when given."""
    known = lm.vocabulary
    frame = pd.DataFrame([text_measurements(t, lm, known) for t in texts],
                         columns=["n_words", "repeated_trigram_share", "distinct_2", "nonword_share", "ngram_perplexity"])
    if lm_perplexity is not None:
        frame["lm_perplexity"] = np.asarray(lm_perplexity, float)
    return frame


@dataclass
class FluencyCalibration:
    bounds: dict  # measurement -> {"side": "high"/"low", "limit": float}

    def to_dict(self) -> dict:
        return {"bounds": self.bounds, "quantile": QUANTILE, "slack": SLACK}


def calibrate_fluency(real: pd.DataFrame) -> FluencyCalibration:
    """Bounds from real texts' measurements (``measure`` of the validation split's human + AI texts)."""
    bounds = {}
    for column, side in CHECKS.items():
        if column not in real:
            continue
        values = real[column].astype(float).replace([np.inf, -np.inf], np.nan).dropna()
        if values.empty:
            continue
        if side == "high":
            limit = float(np.quantile(values, QUANTILE)) * (1 + SLACK) + (0.02 if column.endswith("share") else 0.0)
        else:
            limit = float(np.quantile(values, 1 - QUANTILE)) * (1 - SLACK)
        bounds[column] = {"side": side, "limit": limit}
    return FluencyCalibration(bounds)


def judge_fluency(measured: pd.DataFrame, calibration: FluencyCalibration) -> pd.DataFrame:
    """``fluent`` per text and ``fluency_problems`` (what failed, in words; "" when fluent)."""
    problems = [[] if n > 0 else [CHECK_WORDS["no_words"]] for n in measured["n_words"]]
    for column, bound in calibration.bounds.items():
        if column not in measured:
            continue
        values = measured[column].astype(float).to_numpy()
        bad = values > bound["limit"] if bound["side"] == "high" else values < bound["limit"]
        bad |= np.isnan(values)
        for i in np.flatnonzero(bad & (measured["n_words"].to_numpy() > 0)):  # "no words" says it all
            problems[i].append(CHECK_WORDS[column])
    out = measured.copy()
    out["fluent"] = [not p for p in problems]
    out["fluency_problems"] = ["; ".join(dict.fromkeys(p)) for p in problems]
    return out
