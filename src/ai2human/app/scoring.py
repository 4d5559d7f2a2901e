"""One rewrite judged the way the evaluation judges: success, score and every component.

The run's yardstick (``rundir.YARDSTICK``) gives the verdict; ``scores_markdown`` shows it beside
the rewrite with what each component means, and ``highlight_added`` marks the invented details.
"""

from __future__ import annotations

import re

import numpy as np

ADDED_LABEL = {"numbers": "added number", "dates": "added date", "names": "added name", "quotes": "added quote"}
ADDED_COLORS = {"added number": "#f59e0b", "added date": "#8b5cf6", "added name": "#ef4444", "added quote": "#0ea5e9"}


def score_rewrite(source: str, rewrite: str, embedder, yardstick=None, truncated: bool = False, signals=None) -> dict:
    """The evaluation's verdict and components for one rewrite, as plain JSON-able values.

    Without a yardstick (a run never evaluated) only the similarity is given. A single rewrite is
    its own input's nearest neighbour trivially; the calibrated similarity bar still applies.
    """
    from ai2human.evaluate.meaning import similarity
    from ai2human.evaluate.report import text_record

    if yardstick is None:
        return {"similarity": round(float(similarity(embedder, [source], [rewrite])[0]), 4), "success": None, "score": None}
    frame = yardstick.score(embedder, [source], [rewrite], [truncated], None if signals is None else signals([rewrite]))
    record = text_record(frame.iloc[0])
    record["n_added"] = sum(len(v) for v in record["added"].values())
    record["meaning_bar"] = round(yardstick.meaning.unrelated, 4)
    return record


def highlight_added(text: str, added: dict[str, list[str]]) -> list[tuple[str, str | None]]:
    """``text`` cut into ``(piece, label)`` spans for ``gr.HighlightedText``: each occurrence of an
    added number/date/name/quote gets its label, the rest ``None``. Longer entities win overlaps."""
    spans: list[tuple[int, int, str]] = []
    entities = [(e, ADDED_LABEL[kind]) for kind, items in added.items() for e in items if e and kind in ADDED_LABEL]
    for entity, label in sorted(entities, key=lambda e: -len(e[0])):
        for m in re.finditer(rf"(?<!\w){re.escape(entity)}(?!\w)", text):
            if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                spans.append((m.start(), m.end(), label))
    pieces, at = [], 0
    for start, end, label in sorted(spans):
        if start > at:
            pieces.append((text[at:start], None))
        pieces.append((text[start:end], label))
        at = end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def fmt(x, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _mark(ok) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def scores_markdown(scores: dict, generation: dict, detector_note: str = "") -> str:
    """The verdict and the component table shown beside a finished rewrite."""
    stopped = {"eos": "stopped by itself (EOS)", "template": "stopped at a new prompt block",
               "max_new_tokens": "cut at max new tokens: raise it for the rest"}.get(generation.get("stopped"), "")
    timing = f"{generation.get('new_tokens', 0)} new tokens in {generation.get('seconds', 0):.1f} s; {stopped}"
    if scores.get("success") is None:
        return (f"### Scores\n\nSimilarity to the input: {fmt(scores.get('similarity'))}. No evaluation in this run "
                f"(the evaluation notebook saves the yardstick), so no verdict.\n\n{timing}")
    verdict = ("**Succeeds**: judged human, fluent, meaning kept, nothing invented." if scores["success"]
               else f"**Fails**: {scores['failure']}.")
    added = [f"`{e}`" for items in scores["added"].values() for e in items]
    rows = [
        ("judged human", _mark(scores["judged_human"]), f"P(human) {fmt(scores['human_proba'])} (threshold 0.50)"
         + (f"; {detector_note}" if detector_note else "")),
        ("fluent", _mark(scores["fluent"]), scores["fluency_problems"] or "repetition, non-words, perplexity inside real texts' range"),
        ("meaning kept", _mark(scores["meaning_kept"]), f"similarity {fmt(scores['similarity'])} (bar {fmt(scores['meaning_bar'])})"),
        ("nothing invented", _mark(scores["n_added"] == 0), ", ".join(added) + " (not in the input: check them, highlighted below)"
         if added else "no number, date, name or quote the input lacks"),
        ("not cut off", _mark(scores["not_truncated"]), timing),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return (f"### Score {fmt(scores['score'])}\n\n{verdict}\n\n| condition | met | reading |\n|---|---|---|\n{table}")
