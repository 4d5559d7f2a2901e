"""Which restyled texts make a training pair: the evaluation's yardstick, pointed the other way.

A restyled text becomes the input of a reverse pair only when it is a faithful AI-style version
of its human text. It is dropped when it is empty or cut off, degenerate or not fluent (the
yardstick's fluency check, calibrated on real texts), loses the human text's meaning (the
calibrated meaning check: its own human text is its nearest neighbour and it is above what
unrelated texts reach), invents numbers, dates, names or quotes the human text lacks, or is not
judged AI by the detector (it failed to take on the AI style). The yardstick is the one the
evaluation builds (``evaluate.yardstick.build_yardstick``), fitted and calibrated on the same split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ai2human.evaluate.detector import HUMAN_THRESHOLD

# reason column -> what the report says; a text is kept when none applies. Order = how a drop is explained.
# Content checks come before "cut off": a degenerate text that also ran to the cap is explained as degenerate.
REASONS = {
    "not_styled": "not styled: prompt longer than max_seq_length - styler_max_new_tokens",
    "empty": "empty",
    "not_fluent": "degenerate or not fluent",
    "meaning_lost": "meaning not kept",
    "invents": "invents numbers, dates, names or quotes",
    "not_ai": "not judged AI by the detector",
    "cut_off": "cut off at styler_max_new_tokens",
}


def judge_styled(yardstick, embedder, human: list[str], styled: list[str], hit_limit: list[bool],
                 fits: list[bool] | None = None) -> pd.DataFrame:
    """Per row: every check of the yardstick on ``styled[i]`` against ``human[i]``, one boolean
    column per reason in ``REASONS``, ``kept`` and ``drop_reason`` (the reasons in words)."""
    n = len(human)
    fits = list(fits) if fits is not None else [True] * n
    frame = pd.DataFrame(index=range(n))
    rows = [i for i in range(n) if fits[i]]
    if rows:
        scored = yardstick.score(embedder, [human[i] for i in rows], [styled[i] for i in rows],
                                 [hit_limit[i] for i in rows])
        scored.index = rows
        frame = frame.join(scored)
        voting = scored[[f"p_human_{d}" for d in yardstick.voting]]
        # AI to every voting detector: the most credulous one's P(human) is below the threshold.
        frame["judged_ai"] = pd.Series(voting.max(axis=1) < HUMAN_THRESHOLD, index=rows)
    checks = {
        "not_styled": [not f for f in fits],
        "empty": _fails(frame, "not_empty", fits),
        "cut_off": _fails(frame, "not_truncated", fits),
        "not_fluent": _fails(frame, "fluent", fits),
        "meaning_lost": _fails(frame, "meaning_kept", fits),
        "invents": _fails(frame, "invents_nothing", fits),
        "not_ai": _fails(frame, "judged_ai", fits),
    }
    for name, values in checks.items():
        frame[name] = np.asarray(values, bool)
    frame["kept"] = ~frame[list(REASONS)].any(axis=1)
    frame["drop_reason"] = ["; ".join(REASONS[r] for r in REASONS if row[r]) for _, row in frame[list(REASONS)].iterrows()]
    return frame


def _fails(frame: pd.DataFrame, column: str, fits: list[bool]) -> list[bool]:
    """True where a styled row failed ``column``; False for unstyled rows (they have their own reason)."""
    if column not in frame:
        return [False] * len(fits)
    return [bool(f) and not bool(v) for f, v in zip(fits, frame[column].fillna(True))]


def drop_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Kept and dropped counts, one row per reason (a text can fail several checks; each counts)."""
    n = len(judged)
    rows = [("restyled texts judged", n), ("kept", int(judged["kept"].sum())), ("dropped", int((~judged["kept"]).sum()))]
    rows += [(f"dropped: {words}", int(judged[reason].sum())) for reason, words in REASONS.items()]
    table = pd.DataFrame(rows, columns=["", "texts"]).set_index("")
    table["share"] = [f"{v / n:.0%}" if n else "n/a" for v in table["texts"]]
    return table


def first_reasons(judged: pd.DataFrame) -> dict[str, int]:
    """For ``takeaway``: how many drops each reason explains first (each drop counted once)."""
    counts: dict[str, int] = {}
    for _, row in judged[~judged["kept"]].iterrows():
        first = next(r for r in REASONS if row[r])
        counts[REASONS[first]] = counts.get(REASONS[first], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
