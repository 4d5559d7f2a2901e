"""The EDA's figures. Each ``plot_*`` returns a matplotlib figure and draws nothing else; the
notebook shows it. Sides are keyed "human" / "ai"; ``labels`` gives the dataset's column names."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ai2human.eda.style import STYLE_COLUMNS

SIDES = ("human", "ai")


def _long(values: Mapping[str, Iterable[float]], labels: Mapping[str, str], name: str) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({name: list(v), "text": labels[k]}) for k, v in values.items()], ignore_index=True)


def plot_paragraphs(stats: Mapping[str, dict], tables: Mapping[str, pd.DataFrame], labels: Mapping[str, str]):
    """Paragraphs per text (histogram) and the shares with blank lines / markdown (bars)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    data = _long({s: t["paragraphs"] for s, t in tables.items()}, labels, "paragraphs")
    sns.histplot(data, x="paragraphs", hue="text", discrete=True, multiple="dodge", shrink=0.8, ax=ax1)
    ax1.set(title="Paragraphs (non-empty lines) per text", ylabel="texts")
    keys = ["share_blank_line_multi", "share_markdown", "share_headings", "share_bold", "share_lists"]
    names = ["blank line\nbetween*", "any\nmarkdown", "headings", "bold", "lists"]
    bars = pd.DataFrame([(n, labels[s], stats[s][k]) for s in stats for k, n in zip(keys, names)], columns=["feature", "text", "share"])
    sns.barplot(bars, x="feature", y="share", hue="text", ax=ax2)
    ax2.set(title="Share of texts (* of texts with 2+ paragraphs)", xlabel="", ylim=(0, 1))
    fig.tight_layout()
    return fig


def plot_lengths(lengths: Mapping[str, pd.DataFrame], labels: Mapping[str, str]):
    """Characters and words per text, both columns overlaid."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, unit in zip(axes, ("chars", "words")):
        sns.histplot(_long({s: t[unit] for s, t in lengths.items()}, labels, unit), x=unit, hue="text", bins=50, element="step", ax=ax)
        ax.set(title=f"{'Characters' if unit == 'chars' else 'Words'} per text", ylabel="texts")
    fig.tight_layout()
    return fig


def plot_tokens(tokens: Mapping[str, np.ndarray], stats: Mapping[str, dict], labels: Mapping[str, str], max_seq_length: int):
    """Tokens per column text and per full training example, with the max_seq_length line."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    sns.histplot(_long({s: tokens[s] for s in SIDES}, labels, "tokens"), x="tokens", hue="text", bins=50, element="step", ax=ax1)
    ax1.set(title="Tokens per text", ylabel="texts")
    sns.histplot(x=tokens["example"], bins=50, color="tab:green", ax=ax2)
    ax2.set(title="Tokens per training example (prompt + input + response + EOS)", xlabel="tokens", ylabel="examples")
    example = stats["example"]
    for ax in (ax1, ax2):
        ax.axvline(max_seq_length, color="red", linestyle="--", label=f"max_seq_length = {max_seq_length}")
    ax2.axvline(example["p90"], color="grey", linestyle=":", label=f"p90 = {example['p90']:.0f}")
    ax2.axvline(example["p95"], color="black", linestyle=":", label=f"p95 = {example['p95']:.0f}")
    ax2.legend()
    fig.tight_layout()
    return fig


def plot_top_words(top: Mapping[str, pd.DataFrame], labels: Mapping[str, str]):
    """Bar charts of the most frequent non-stop words per column."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(top), figsize=(12, 0.25 * max(len(f) for f in top.values()) + 1.5))
    for ax, (side, frame) in zip(np.atleast_1d(axes), top.items()):
        sns.barplot(frame, x="per_1000_words", y="word", color="tab:blue" if side == "human" else "tab:orange", ax=ax)
        ax.set(title=f"Top words: {labels[side]}", xlabel="per 1,000 words", ylabel="")
    fig.tight_layout()
    return fig


def plot_wordclouds(counts: Mapping[str, Counter], labels: Mapping[str, str], stop: Iterable[str], max_words: int = 100):
    """One word cloud per column from its word counts, stop words removed."""
    import matplotlib.pyplot as plt
    from wordcloud import WordCloud

    stop = set(stop)
    fig, axes = plt.subplots(1, len(counts), figsize=(12, 3.4))
    for ax, (side, c) in zip(np.atleast_1d(axes), counts.items()):
        freqs = {w: n for w, n in c.items() if w not in stop and len(w) > 1} or {"(no words)": 1}
        cloud = WordCloud(width=600, height=300, background_color="white", max_words=max_words, random_state=0)
        ax.imshow(cloud.generate_from_frequencies(freqs), interpolation="bilinear")
        ax.set_title(labels[side])
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_distinguishing(human: pd.DataFrame, ai: pd.DataFrame, labels: Mapping[str, str]):
    """Horizontal bars of log-odds z-scores: the words that most mark each style."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 0.25 * max(len(human), len(ai)) + 1.5))
    for ax, frame, side, color in ((axes[0], human, "human", "tab:blue"), (axes[1], ai, "ai", "tab:orange")):
        ax.barh(frame["word"][::-1], frame["z"].abs()[::-1], color=color)
        ax.set(title=f"Most typical of {labels[side]}", xlabel="|z| (weighted log-odds, Dirichlet prior)")
    fig.tight_layout()
    return fig


def plot_style(tables: Mapping[str, pd.DataFrame], labels: Mapping[str, str]):
    """Box plots of the continuous style statistics per column."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    columns = [c for c in STYLE_COLUMNS if c not in ("blank_line_paragraphs", "markdown", "paragraphs")]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.1 * len(columns), 3.6))
    for ax, column in zip(axes, columns):
        data = _long({s: t[column] for s, t in tables.items()}, labels, column)
        sns.boxplot(data, x="text", y=column, hue="text", showfliers=False, ax=ax)
        ax.set(title=column.replace("_", " "), xlabel="", ylabel="")
    fig.tight_layout()
    return fig
