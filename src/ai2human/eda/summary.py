"""``eda_summary.json``: every number ``01_eda`` printed, written for the other notebooks.

Reading it from another notebook::

    from ai2human.eda.lengths import share_over, overlong_warning
    from ai2human.eda.summary import read_summary

    summary = read_summary(run_dir)                      # the folder or the file
    summary["tokens"]["example"]["p95"]                  # percentiles of the full example
    share_over(summary, max_seq_length)                  # share over ANY length
    message = overlong_warning(summary, max_seq_length)  # "" when <= 10% are over

The full layout is in ``build_summary``'s docstring.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ai2human.rundir import EDA_SUMMARY as SUMMARY_FILE


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
