"""How far a system's style sits from the human texts', in units of the human spread.

The EDA's per-text style statistics (``eda.style.style_table``) per system, compared with the
human reference: a gap of 1 means "one typical human-to-human difference away".
"""

from __future__ import annotations

import pandas as pd


def style_columns(*frames: pd.DataFrame) -> list[str]:
    """The style columns all frames share, in ``style.STYLE_COLUMNS`` order."""
    from ai2human.eda.style import STYLE_COLUMNS

    return [c for c in STYLE_COLUMNS if all(c in f.columns for f in frames)]


def style_gaps(system_style: pd.DataFrame, human_style: pd.DataFrame) -> pd.Series:
    """Per style column: |system mean - human mean| / human standard deviation.

    The human spread is the yardstick, so a gap of 1 means "one typical human-to-human difference
    away". A column where the human texts do not vary uses the pooled spread of both, and 1 if that
    is 0 too (the gap is then the raw difference).
    """
    gaps = {}
    for column in style_columns(system_style, human_style):
        system, human = system_style[column].astype(float), human_style[column].astype(float)
        scale = human.std(ddof=0)
        if not scale > 0:
            scale = pd.concat([system, human]).std(ddof=0)
        if not scale > 0:
            scale = 1.0
        gaps[column] = abs(system.mean() - human.mean()) / scale
    return pd.Series(gaps, dtype=float)


def style_distance(system_style: pd.DataFrame, human_style: pd.DataFrame) -> float:
    """One number: the mean of ``style_gaps`` over the style columns (0 = human style on average)."""
    gaps = style_gaps(system_style, human_style)
    return float(gaps.mean()) if len(gaps) else float("nan")
