"""Per-text scores -> one row per system, leading with success rate and mean score.

``summary_table`` is the systems x metrics table the notebook shows, ``eval_metrics.json`` holds
and ``python -m ai2human.score`` prints; ``describe_table`` turns it for reading with what each
metric means, and ``styled`` formats it per row (shares as %, perplexities with one decimal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ai2human.evaluate.detector import HUMAN_THRESHOLD

SYSTEMS = ("identity", "base", "finetuned", "dpo", "human")  # dpo: only when the preference stage ran
SYSTEM_LABELS = {"identity": "the unchanged input", "base": "the base model", "finetuned": "the fine-tuned model",
                 "dpo": "the DPO model", "human": "the human reference"}

# metric -> (per-text column, aggregate, what it means). Higher is better unless noted.
METRICS = {
    "success_rate": ("success", "mean", "share that succeed: judged human by every detector, fluent, meaning kept, nothing invented, not empty, not cut off"),
    "score_mean": ("score", "mean", "mean score per text: P(human) x meaning x fluent, 0-1 (J-score style)"),
    "judged_human_share": ("judged_human", "mean", f"share every detector judges human (p >= {HUMAN_THRESHOLD})"),
    "judged_human_tfidf_share": ("judged_human_tfidf", "mean", "share the TF-IDF detector judges human"),
    "judged_human_fast_detect_share": ("judged_human_fast_detect", "mean", "share Fast-DetectGPT (base model) judges human"),
    "human_proba_mean": ("human_proba", "mean", "mean P(human), the most sceptical detector's"),
    "fluent_share": ("fluent", "mean", "share fluent: repetition, non-words and perplexity inside real texts' range"),
    "meaning_kept_share": ("meaning_kept", "mean", "share whose input is their nearest neighbour and above unrelated texts' similarity"),
    "similarity_mean": ("similarity", "mean", "mean cosine similarity to the input"),
    "adds_any_share": ("invents", "mean", "share inventing a number, date, name or quote (lower is better)"),
    "adds_numbers_share": ("added_numbers", "any", "share adding a number (lower is better)"),
    "adds_dates_share": ("added_dates", "any", "share adding a date (lower is better)"),
    "adds_names_share": ("added_names", "any", "share adding a name (lower is better)"),
    "adds_quotes_share": ("added_quotes", "any", "share adding a quotation (lower is better)"),
    "empty_share": ("empty", "mean", "share of empty outputs (lower is better)"),
    "truncated_share": ("truncated", "mean", "share cut off at max_new_tokens (lower is better)"),
    "repeated_trigram_mean": ("repeated_trigram_share", "mean", "mean share of repeated word trigrams (lower is better)"),
    "nonword_mean": ("nonword_share", "mean", "mean share of non-words (lower is better)"),
    "ngram_perplexity_median": ("ngram_perplexity", "median", "median word-bigram perplexity, fitted on training texts (lower is more fluent)"),
    "lm_perplexity_median": ("lm_perplexity", "median", "median base-model perplexity (lower is more fluent)"),
    "length_ratio_mean": ("length_ratio", "mean", "mean output/input words"),
    "length_ratio_median": ("length_ratio", "median", "median output/input words"),
}
STYLE_DISTANCE_HELP = "mean style gap to the human texts, in human standard deviations (lower is better)"


def _derived(scores: pd.DataFrame) -> pd.DataFrame:
    out = scores.copy()
    out["invents"] = ~out["invents_nothing"].astype(bool)
    out["empty"] = ~out["not_empty"].astype(bool)
    out["truncated"] = ~out["not_truncated"].astype(bool)
    for name in ("tfidf", "fast_detect"):
        if f"p_human_{name}" in out:
            out[f"judged_human_{name}"] = out[f"p_human_{name}"] >= HUMAN_THRESHOLD
    return out


def summarize(scores: pd.DataFrame) -> dict[str, float]:
    """One system's per-text scores -> its row of the table (metrics whose column is absent are left out)."""
    frame, row = _derived(scores), {}
    for name, (column, how, _) in METRICS.items():
        if column not in frame:
            continue
        values = frame[column].map(bool) if how == "any" else frame[column]
        values = values.astype(float).replace([np.inf, -np.inf], np.nan)
        row[name] = float(values.median() if how == "median" else values.mean()) if values.notna().any() else float("nan")
    return row


def summary_table(scores: dict[str, pd.DataFrame], style_distances: dict[str, float] | None = None) -> pd.DataFrame:
    """Systems (rows, in the given order) x metrics (columns)."""
    table = pd.DataFrame({name: summarize(frame) for name, frame in scores.items()}).T
    if style_distances:
        table["style_distance"] = [style_distances.get(name, np.nan) for name in table.index]
    table.index.name = "system"
    return table


def describe_table(table: pd.DataFrame) -> pd.DataFrame:
    """Metrics as rows, systems as columns, and what each metric means."""
    help_text = {name: text for name, (_, _, text) in METRICS.items()} | {"style_distance": STYLE_DISTANCE_HELP}
    turned = table.T.copy()
    turned["what it measures"] = [help_text.get(m, "") for m in turned.index]
    return turned


def _format_value(metric: str, value) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if metric.endswith(("_share", "_rate")) or metric in ("nonword_mean", "repeated_trigram_mean"):
        return f"{100 * value:.0f}%"
    if "perplexity" in metric:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def formatted(described: pd.DataFrame) -> pd.DataFrame:
    """``describe_table``'s output as strings, formatted per metric (rows): 47%, 0.52, 1,234.5."""
    return pd.DataFrame({c: [v if c == "what it measures" else _format_value(m, v) for m, v in described[c].items()]
                         for c in described.columns}, index=described.index)


def styled(frame: pd.DataFrame, caption: str):
    """A pandas Styler with a caption, texts wrapped and left-aligned, so a table fits 1,200 px."""
    return (frame.style.set_caption(caption)
            .set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top", "max-width": "420px"})
            .set_table_styles([{"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left;"}]))
