"""What the pairs report shows: restyled texts beside their human texts, and how the kept reverse
pairs compare with the dataset's own pairs on the detector and on similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ai2human.evaluate.detector import HUMAN_THRESHOLD
from ai2human.evaluate.report import clip_text

GROUPS = ("dataset pairs", "kept reverse pairs", "dropped restyled texts")


def side_by_side(rows: pd.DataFrame, styled: list[str], judged: pd.DataFrame, which, chars: int = 240):
    """The human text, the dataset's AI text and the restyled text of the rows ``which``, with the
    verdict, as a captioned table whose four text columns fit a 1,200 px page."""
    from ai2human.evaluate.summary import styled as captioned

    out = pd.DataFrame({
        "human text (target)": [clip_text(rows["human"].iloc[i], chars) for i in which],
        "dataset AI text": [clip_text(rows["ai"].iloc[i], chars) for i in which],
        "restyled (reverse input)": [clip_text(styled[i], chars) for i in which],
        "verdict": ["kept" if judged["kept"].iloc[i] else "dropped: " + judged["drop_reason"].iloc[i] for i in which],
    }, index=[int(rows["row"].iloc[i]) for i in which])
    out.index.name = "row"
    return captioned(out, "Human text, dataset AI text, restyled text").set_properties(**{"max-width": "260px"})


def distributions(yardstick, embedder, rows: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """One line per text: its group (``GROUPS``), the TF-IDF detector's P(human) and its
    similarity to its human text. The dataset's pairs are the styled rows' own pairs."""
    from ai2human.evaluate.meaning import similarity

    human, ai = rows["human"].astype(str).tolist(), rows["ai"].astype(str).tolist()
    original = pd.DataFrame({"group": GROUPS[0], "p_human": yardstick.detector.predict_human_proba(ai),
                             "similarity": similarity(embedder, human, ai)})
    styled = judged[~judged["not_styled"]]
    if styled.empty:  # every prompt was too long: only the dataset's pairs to show
        return original
    restyled = pd.DataFrame({"group": np.where(styled["kept"], GROUPS[1], GROUPS[2]),
                             "p_human": styled["p_human_tfidf"].astype(float), "similarity": styled["similarity"].astype(float)})
    return pd.concat([original, restyled], ignore_index=True)


def distribution_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Texts, median P(human), share judged AI and median similarity per group (a statistic per row)."""
    rows = {}
    for group in GROUPS:
        part = frame[frame["group"] == group]
        rows[group] = {"texts": f"{len(part)}",
                       "median P(human), TF-IDF detector": f"{part['p_human'].median():.2f}" if len(part) else "n/a",
                       "judged AI": f"{(part['p_human'] < HUMAN_THRESHOLD).mean():.0%}" if len(part) else "n/a",
                       "median similarity to the human text": f"{part['similarity'].median():.2f}" if len(part) else "n/a"}
    return pd.DataFrame(rows)


def plot_distributions(frame: pd.DataFrame, meaning_bar: float):
    """P(human) and similarity per group, as boxes with the points. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    rng = np.random.default_rng(0)
    for ax, (column, title, line) in zip(axes, [("p_human", "P(human), TF-IDF detector", HUMAN_THRESHOLD),
                                                ("similarity", "similarity to the human text", meaning_bar)]):
        data = [frame.loc[frame["group"] == g, column].dropna().to_numpy() for g in GROUPS]
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.5)
        ax.axhline(line, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(1, len(GROUPS) + 1), [f"{g}\n(n={len(d)})" for g, d in zip(GROUPS, data)], fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def takeaway(frame: pd.DataFrame, meaning_bar: float) -> str:
    """The section's one line: median similarity of the dataset's pairs against the kept reverse pairs."""
    medians = frame.groupby("group")["similarity"].median()
    kept = f"{medians[GROUPS[1]]:.2f} for the kept reverse pairs" if GROUPS[1] in medians else "no reverse pair was kept"
    return (f"Takeaway: median similarity to the human text {medians.get(GROUPS[0], float('nan')):.2f} for the dataset's "
            f"pairs, {kept} (meaning bar {meaning_bar:.2f}).")
