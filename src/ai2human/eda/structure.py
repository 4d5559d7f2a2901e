"""Per-column aggregates of the per-text style statistics (``style.style_table``): paragraph
structure and markdown use, and the mean and spread of every style column."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ai2human.eda.lengths import percentiles
from ai2human.eda.style import STYLE_COLUMNS, markdown_kinds, style_table


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


def style_stats(tables: Mapping[str, pd.DataFrame]) -> dict:
    """``{side: {column: {"mean", "std"}}}`` over each side's ``style_table``."""
    return {
        side: {c: {"mean": float(t[c].mean()), "std": float(t[c].std(ddof=0))} for c in STYLE_COLUMNS}
        for side, t in tables.items()
    }
