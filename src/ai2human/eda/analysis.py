"""The numbers behind ``01_eda``: paragraph structure, lengths and token percentiles, vocabulary
and the words that tell the two styles apart, and the ``eda_summary.json`` the other notebooks read.

Everything is keyed by ``"human"`` / ``"ai"`` (the columns of ``data.load_pairs``'s frame), plus
``"example"`` for the full training example; the dataset's own column names are only labels.
Plot helpers (``plot_*``) return a matplotlib figure and draw nothing else.

Reading ``eda_summary.json`` from another notebook::

    summary = eda.read_summary(run_dir / "eda_summary.json")
    summary["tokens"]["example"]["p95"]                     # percentiles of the full example
    eda.share_over(summary, max_seq_length)                 # share truncated at ANY length
    message = eda.truncation_warning(summary, max_seq_length)   # "" when <= 10% are cut

The full layout is in ``build_summary``'s docstring.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ai2human.data.prompts import format_example
from ai2human.eda.style import STYLE_COLUMNS, markdown_kinds, style_table
from ai2human.rundir import EDA_SUMMARY as SUMMARY_FILE

SIDES = ("human", "ai")
PERCENTILES = (50, 90, 95, 99)
TRUNCATION_WARNING_SHARE = 0.10  # the fine-tuning notebook warns above this share
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


# --- lengths and percentiles -------------------------------------------------------------------


def percentiles(values: Iterable[float], qs: Sequence[float] = PERCENTILES) -> dict[str, float]:
    """``{"count", "mean", "p50", "p90", ..., "max"}`` (numpy's linear interpolation)."""
    arr = np.asarray(values if hasattr(values, "__len__") else list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("percentiles of an empty list")
    out = {"count": int(arr.size), "mean": float(arr.mean())}
    out.update({f"p{q:g}": float(v) for q, v in zip(qs, np.percentile(arr, qs))})
    out["max"] = float(arr.max())
    return out


def power_of_two_at_least(value: float) -> int:
    """The smallest power of two >= ``value`` (1 for anything <= 1)."""
    return 1 if value <= 1 else 2 ** math.ceil(math.log2(value))


def recommend_max_seq_length(p90: float, p95: float) -> int:
    """The smallest power of two that covers both the 90th and the 95th percentile."""
    return power_of_two_at_least(max(p90, p95))


def share_over(summary_or_lengths: Mapping | Iterable[int], max_seq_length: int) -> float:
    """Share of training examples longer than ``max_seq_length`` tokens, i.e. truncated by it.

    Takes ``eda_summary.json``'s dict (its full-example token lengths are stored for this) or a
    list of lengths. An example of exactly ``max_seq_length`` tokens fits.
    """
    if isinstance(summary_or_lengths, Mapping):
        summary_or_lengths = summary_or_lengths["tokens"]["example"]["lengths"]
    lengths = np.asarray(list(summary_or_lengths), dtype=float)
    return float((lengths > max_seq_length).mean()) if lengths.size else 0.0


def truncation_warning(summary: Mapping, max_seq_length: int, threshold: float = TRUNCATION_WARNING_SHARE) -> str:
    """A warning when ``max_seq_length`` truncates more than ``threshold`` of the examples, else ""."""
    share = share_over(summary, max_seq_length)
    if share <= threshold:
        return ""
    tokens = summary["tokens"]
    return (
        f"max_seq_length={max_seq_length} truncates {share:.1%} of training examples "
        f"(counted with the {tokens['tokenizer']} tokenizer in eda_summary.json); "
        f"{tokens['example']['recommended_max_seq_length']} covers 95% of them"
    )


def length_table(texts: Iterable[str]) -> pd.DataFrame:
    """Characters and whitespace-separated words per text."""
    texts = list(texts)
    return pd.DataFrame({"chars": [len(t) for t in texts], "words": [len(t.split()) for t in texts]})


def example_texts(pairs: pd.DataFrame, eos_token: str) -> list[str]:
    """The full training examples exactly as fine-tuning formats them (prompt + human + EOS)."""
    return [format_example(ai, human, eos_token) for ai, human in zip(pairs["ai"], pairs["human"])]


def token_lengths(texts: Sequence[str], tokenizer, batch_size: int = 1000, add_special_tokens: bool = False) -> np.ndarray:
    """Tokens per text, tokenised in batches (a fast tokenizer encodes each batch in parallel).

    The columns are counted without special tokens (the text alone); pass ``add_special_tokens=True``
    for training examples, as a trainer's tokenizer call would (Qwen adds none; Llama adds a BOS).
    """
    if not getattr(tokenizer, "is_fast", False):
        import warnings

        warnings.warn(f"{type(tokenizer).__name__} is a slow tokenizer; counting tokens will take a while")
    texts = list(texts)
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            add_special_tokens=add_special_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # no "longer than model_max_length" warning: measuring that is the point
        )
        counts.extend(len(ids) for ids in batch["input_ids"])
    return np.asarray(counts, dtype=np.int64)


def length_stats(lengths: Mapping[str, pd.DataFrame]) -> dict:
    """``{"chars": {side: percentiles}, "words": {side: percentiles}}`` from ``length_table``s."""
    return {unit: {side: percentiles(table[unit]) for side, table in lengths.items()} for unit in ("chars", "words")}


def token_stats(lengths: Mapping[str, np.ndarray], max_seq_length: int) -> dict:
    """Percentiles and share over ``max_seq_length`` per side; the example also gets the
    recommendation and its per-example lengths (so any other max_seq_length can be checked)."""
    stats = {}
    for side, values in lengths.items():
        stats[side] = {**percentiles(values), "share_over_max_seq_length": share_over(values, max_seq_length)}
    if "example" in stats:
        example = stats["example"]
        example["power_of_two_p90"] = power_of_two_at_least(example["p90"])
        example["power_of_two_p95"] = power_of_two_at_least(example["p95"])
        example["recommended_max_seq_length"] = recommend_max_seq_length(example["p90"], example["p95"])
        example["lengths"] = [int(v) for v in lengths["example"]]
    return stats


def stats_frame(stats: Mapping[str, Mapping], labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A display table of a ``{side: {name: value}}`` dict: one row per side (renamed by ``labels``),
    nested dicts flattened to "name sub" columns, lists (the stored lengths) left out."""
    rows = {}
    for side, values in stats.items():
        flat = {}
        for name, value in values.items():
            if isinstance(value, Mapping):
                flat.update({f"{name} {sub}": v for sub, v in value.items()})
            elif not isinstance(value, list):
                flat[name] = value
        rows[(labels or {}).get(side, side)] = flat
    return pd.DataFrame(rows).T


# --- paragraph structure -----------------------------------------------------------------------


def paragraph_stats(texts: Sequence[str], table: pd.DataFrame | None = None) -> dict:
    """Blank-line paragraph breaks, paragraph counts and markdown use over a column.

    ``share_blank_line_multi`` is over texts with two or more paragraphs, the only ones that can
    have a blank line between paragraphs. ``table`` is the column's ``style_table`` if computed.
    """
    table = style_table(texts) if table is None else table
    kinds = pd.DataFrame([markdown_kinds(t) for t in texts], columns=["headings", "bold", "lists"])
    multi = table["paragraphs"] >= 2
    return {
        "share_blank_line": float(table["blank_line_paragraphs"].mean()),
        "share_blank_line_multi": float(table.loc[multi, "blank_line_paragraphs"].mean()) if multi.any() else 0.0,
        "texts_multi_paragraph": int(multi.sum()),
        "paragraphs": percentiles(table["paragraphs"]),
        "share_markdown": float(table["markdown"].mean()),
        **{f"share_{k}": float(kinds[k].mean()) for k in kinds.columns},
    }


# --- vocabulary ----------------------------------------------------------------------------------


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


# --- style ---------------------------------------------------------------------------------------


def style_stats(tables: Mapping[str, pd.DataFrame]) -> dict:
    """``{side: {column: {"mean", "std"}}}`` over each side's ``style_table``."""
    return {
        side: {c: {"mean": float(t[c].mean()), "std": float(t[c].std(ddof=0))} for c in STYLE_COLUMNS}
        for side, t in tables.items()
    }


# --- the summary artifact ------------------------------------------------------------------------


def build_summary(
    report,
    columns: Mapping[str, str],
    paragraphs: Mapping[str, dict],
    lengths: dict,
    tokens: dict,
    tokenizer: str,
    max_seq_length: int,
    top: Mapping[str, pd.DataFrame],
    distinguishing: Mapping[str, pd.DataFrame],
    style: dict,
) -> dict:
    """Everything ``01_eda`` printed, as one JSON-ready dict. Sides are "human" and "ai"::

        dataset     path, rows_read, dropped_empty, dropped_duplicates, rows_kept, columns{human, ai}
        paragraphs  {side: share_blank_line, share_blank_line_multi, texts_multi_paragraph,
                     paragraphs{percentiles}, share_markdown, share_headings, share_bold, share_lists}
        lengths     {chars|words: {side: {count, mean, p50, p90, p95, p99, max}}}
        tokens      tokenizer, max_seq_length,
                    {human|ai|example: {count, mean, p50, p90, p95, p99, max, share_over_max_seq_length}}
                    example also: power_of_two_p90, power_of_two_p95, recommended_max_seq_length,
                    lengths (tokens per training example, in row order)
        vocabulary  top_words{side: [{word, count, per_1000_words}]},
                    distinguishing{side: [{word, z, count_human, count_ai}]}
        style       {side: {STYLE_COLUMNS name: {mean, std}}}
    """

    def records(frame: pd.DataFrame, keep: Mapping[str, str]) -> list[dict]:
        rows = frame[list(keep)].rename(columns=keep).to_dict("records")
        return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]

    top_keys = {"word": "word", "count": "count", "per_1000_words": "per_1000_words"}
    log_odds_keys = {"word": "word", "z": "z", "count_a": "count_human", "count_b": "count_ai"}

    return {
        "dataset": {**report.to_dict(), "columns": dict(columns)},
        "paragraphs": dict(paragraphs),
        "lengths": lengths,
        "tokens": {"tokenizer": tokenizer, "max_seq_length": max_seq_length, **tokens},
        "vocabulary": {
            "top_words": {side: records(f, top_keys) for side, f in top.items()},
            "distinguishing": {side: records(f, log_odds_keys) for side, f in distinguishing.items()},
        },
        "style": style,
    }


def _dumps(obj, indent: int = 0, in_list: bool = False) -> str:
    """JSON with dicts indented, but lists of scalars and flat records in a list on one line (the
    token lengths stay compact). Floats are rounded to 6 decimals."""
    if isinstance(obj, float):
        return json.dumps(round(obj, 6)) if math.isfinite(obj) else "null"
    if not isinstance(obj, (dict, list, tuple)):
        return json.dumps(obj, default=_plain)
    children = list(obj.values()) if isinstance(obj, dict) else list(obj)
    flat = not any(isinstance(v, (dict, list, tuple)) for v in children)
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        if flat and in_list:
            return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v)}" for k, v in obj.items()) + "}"
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if flat:
        return "[" + ", ".join(_dumps(v) for v in obj) + "]"
    return "[\n" + ",\n".join(inner + _dumps(v, indent + 2, in_list=True) for v in obj) + "\n" + pad + "]"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_summary(summary: dict, run_dir: str | Path) -> Path:
    """Write ``run_dir/eda_summary.json`` atomically; returns its path."""
    path = Path(run_dir) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(_dumps(summary) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_summary(path: str | Path) -> dict:
    """``eda_summary.json`` from its path or from the run folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    return json.loads(path.read_text(encoding="utf-8"))


# --- display and plots ---------------------------------------------------------------------------


def sample_pairs_html(pairs: pd.DataFrame, labels: Mapping[str, str], n: int = 3, seed: int = 0, max_chars: int = 700) -> str:
    """``n`` random pairs side by side as an HTML table; line breaks kept (blank lines are a finding)."""
    rows = pairs.sample(min(n, len(pairs)), random_state=seed)

    def cell(text: str) -> str:
        cut = text if len(text) <= max_chars else text[:max_chars] + " [...]"
        return f'<td style="white-space: pre-wrap; vertical-align: top; text-align: left">{html.escape(cut)}</td>'

    head = "".join(f"<th>{html.escape(labels[s])}</th>" for s in SIDES)
    body = "".join(f"<tr><td>row {r.row}</td>{cell(r.human)}{cell(r.ai)}</tr>" for r in rows.itertuples())
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


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
