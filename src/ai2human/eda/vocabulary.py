"""The vocabulary of each side: word counts, the most frequent content words, and the words that
tell the two styles apart (weighted log-odds with an informative Dirichlet prior)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def stopwords() -> frozenset[str]:
    """wordcloud's English stop words (lower case, contractions included) - the word cloud's own list."""
    from wordcloud import STOPWORDS

    return frozenset(w.lower() for w in STOPWORDS)


def word_counts(texts: Iterable[str]) -> Counter:
    """Lower-case word counts; contractions stay whole ("it's", not "it" + "s"); digits are skipped."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(_WORD.findall(text.lower().replace("\u2019", "'")))
    return counts


def top_words(counts: Counter, n: int = 20, stop: Iterable[str] = ()) -> pd.DataFrame:
    """The ``n`` most frequent words not in ``stop``: word, count and count per 1,000 words."""
    stop = set(stop)
    total = sum(counts.values()) or 1
    rows = [(w, c, 1000 * c / total) for w, c in counts.most_common() if w not in stop and len(w) > 1][:n]
    return pd.DataFrame(rows, columns=["word", "count", "per_1000_words"])


def log_odds_dirichlet(counts_a: Mapping[str, int], counts_b: Mapping[str, int], prior: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008).

    For word w with counts y_a, y_b, totals n_a, n_b, prior pseudo-counts a_w and a_0 = sum(a_w):

        delta = log((y_a + a_w) / (n_a + a_0 - y_a - a_w)) - log((y_b + a_w) / (n_b + a_0 - y_b - a_w))
        z = delta / sqrt(1 / (y_a + a_w) + 1 / (y_b + a_w))

    z > 0 marks words typical of a, z < 0 of b; z weighs the difference by how sure we are, so
    rare words need a large difference to rank. ``prior`` defaults to the pooled counts a + b
    (the corpus as its own background). Sorted by z, largest first.
    """
    vocab = sorted(set(counts_a) | set(counts_b) | set(prior or ()))
    ya = np.array([counts_a.get(w, 0) for w in vocab], dtype=float)
    yb = np.array([counts_b.get(w, 0) for w in vocab], dtype=float)
    alpha = ya + yb if prior is None else np.array([prior.get(w, 0.0) for w in vocab], dtype=float)
    if (alpha <= 0).any():
        missing = [w for w, a in zip(vocab, alpha) if a <= 0][:5]
        raise ValueError(f"the prior needs a positive pseudo-count for every word; none for {missing}")
    a0, na, nb = alpha.sum(), ya.sum(), yb.sum()
    delta = np.log((ya + alpha) / (na + a0 - ya - alpha)) - np.log((yb + alpha) / (nb + a0 - yb - alpha))
    z = delta / np.sqrt(1 / (ya + alpha) + 1 / (yb + alpha))
    frame = pd.DataFrame({"word": vocab, "count_a": ya.astype(int), "count_b": yb.astype(int), "log_odds": delta, "z": z})
    return frame.sort_values(["z", "word"], ascending=[False, True], ignore_index=True)


def distinguishing_words(log_odds: pd.DataFrame, n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` words most typical of side a (largest z) and of side b (most negative z)."""
    return log_odds.head(n).reset_index(drop=True), log_odds.iloc[::-1].head(n).reset_index(drop=True)
