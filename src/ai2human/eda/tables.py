"""The EDA's tables as a reader sees them: one statistic per row, a column per side, a caption,
and every number at a sensible precision (counts as integers, shares as percentages, other
numbers with three significant digits), so no table is wider than a report page.

``table(frame, caption)`` formats any such frame; the ``*_frame`` helpers build the frames from
the dicts the other EDA modules return. Texts are shown with their line breaks, in cells of capped
height that scroll, so one long text cannot stretch the page.
"""

from __future__ import annotations

import html
import math
from typing import Mapping

import pandas as pd

from ai2human.eda.style import STYLE_COLUMNS

SIDES = ("human", "ai")
# Statistics that are counts whatever their values, and style columns that are 0/1 per text (their
# mean is a share of texts).
COUNT_NAMES = ("count", "texts_multi_paragraph", "power_of_two_p90", "power_of_two_p95", "recommended_max_seq_length")
SHARE_NAMES = ("blank_line_paragraphs", "markdown")
TEXT_CELL_MAX_HEIGHT = "18em"
_CAPTION = {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold; padding-bottom: 4px"}


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, thousands separated, never in e-notation above 0.01."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -2:
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{max(0, digits - 1 - magnitude)}f}"


def format_value(name: str, value) -> str:
    """One cell: "" for a missing value, a share as a percentage, a count or a whole number as an
    integer, anything else with three significant digits. ``name`` is the statistic's row label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    words = str(name).split()
    if "share" in str(name) or (words and words[0] in SHARE_NAMES and words[-1] == "mean"):
        return f"{value:.1%}"
    if (words and words[-1] in COUNT_NAMES) or float(value).is_integer():
        return f"{value:,.0f}"
    return significant(float(value))


def table(frame: pd.DataFrame, caption: str):
    """A pandas Styler of ``frame`` (one statistic per row) with ``caption`` and per-row formats."""
    styler = frame.style.set_caption(caption).set_table_styles([_CAPTION])
    for name in frame.index:
        label = " ".join(map(str, name)) if isinstance(name, tuple) else name
        styler = styler.format(lambda v, n=label: format_value(n, v), subset=pd.IndexSlice[[name], :])
    return styler


def stats_frame(stats: Mapping[str, Mapping], labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A ``{side: {name: value}}`` dict as one row per statistic and one column per side (renamed by
    ``labels``); nested dicts flattened to "name sub" rows, lists (the stored lengths) left out."""
    columns = {}
    for side, values in stats.items():
        flat = {}
        for name, value in values.items():
            if isinstance(value, Mapping):
                flat.update({f"{name} {sub}": v for sub, v in value.items()})
            elif not isinstance(value, list):
                flat[name] = value
        columns[(labels or {}).get(side, side)] = flat
    return pd.DataFrame(columns)


def lengths_frame(length_stats: Mapping[str, Mapping], labels: Mapping[str, str]) -> pd.DataFrame:
    """Characters and words side by side: a row per percentile, columns (unit, side)."""
    return pd.concat({unit: stats_frame(length_stats[unit], labels) for unit in ("chars", "words")}, axis=1)


def style_frame(style_summary: Mapping[str, Mapping], labels: Mapping[str, str]) -> pd.DataFrame:
    """A row per style column, columns (side, mean | std)."""
    return pd.concat(
        {labels.get(side, side): pd.DataFrame(values).T.reindex(STYLE_COLUMNS)[["mean", "std"]]
         for side, values in style_summary.items()},
        axis=1,
    )


def style_stats_table(style_summary: Mapping[str, Mapping], labels: Mapping[str, str], caption: str):
    """``style_frame`` formatted: shares of texts in %, the rest with three significant digits."""
    frame = style_frame(style_summary, labels)
    styler = frame.style.set_caption(caption).set_table_styles([_CAPTION])
    for name in frame.index:
        share = name in SHARE_NAMES
        styler = styler.format(lambda v, s=share: "" if pd.isna(v) else f"{v:.1%}" if s else significant(float(v)),
                               subset=pd.IndexSlice[[name], :])
    return styler


def text_cell(text: str, max_chars: int = 700) -> str:
    """A table cell holding ``text`` with its line breaks, cut at ``max_chars``, at most
    TEXT_CELL_MAX_HEIGHT tall (it scrolls): a text of 200 one-character lines stays one row high."""
    cut = text if len(text) <= max_chars else text[:max_chars] + " [...]"
    return (
        '<td style="vertical-align: top; text-align: left">'
        f'<div style="white-space: pre-wrap; max-height: {TEXT_CELL_MAX_HEIGHT}; overflow-y: auto">{html.escape(cut)}</div></td>'
    )


def sample_pairs_html(pairs: pd.DataFrame, labels: Mapping[str, str], n: int = 3, seed: int = 0, max_chars: int = 700) -> str:
    """``n`` random pairs side by side as an HTML table; line breaks kept (blank lines are a finding)."""
    rows = pairs.sample(min(n, len(pairs)), random_state=seed)
    head = "".join(f'<th style="width: 47%">{html.escape(labels[s])}</th>' for s in SIDES)
    body = "".join(f"<tr><td>row {r.row}</td>{text_cell(r.human, max_chars)}{text_cell(r.ai, max_chars)}</tr>"
                   for r in rows.itertuples())
    caption = f'<caption style="caption-side: top; text-align: left; font-weight: bold">{len(rows)} random pairs, as written</caption>'
    return f'<table style="width: 100%; table-layout: fixed">{caption}<tr><th style="width: 6%"></th>{head}</tr>{body}</table>'
