"""What the evaluation report shows beyond the table: distributions, examples, per-text records.

``plot_distributions`` draws one panel per component, ``examples_frame`` the best and worst
rewrites with why they failed, ``output_records`` / ``save_jsonl`` write ``eval_outputs.jsonl``
(every input, output and per-text score, the auditable trail behind every number).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.evaluate.detector import HUMAN_THRESHOLD
from ai2human.evaluate.entities import ENTITY_KINDS

RECORD_FIELDS = ("success", "score", "human_proba", "judged_human", "fluent", "fluency_problems", "meaning_kept",
                 "meaning", "similarity", "nearest_is_input", "repeated_trigram_share", "distinct_2", "nonword_share",
                 "ngram_perplexity", "lm_perplexity", "p_human_tfidf", "p_human_fast_detect", "length_ratio",
                 "not_empty", "not_truncated", "failure",
                 "reward", "p_human_judge", "held_out_success")  # the last three: reward_vs_judge.per_text


def plot_distributions(scores: dict[str, pd.DataFrame], meaning_bar: float):
    """One panel per per-text component, one box (with the points) per system. Returns the figure."""
    import matplotlib.pyplot as plt

    panels = [
        ("score", "score (P(human) x meaning x fluent)", None),
        ("human_proba", "P(human), most sceptical detector", HUMAN_THRESHOLD),
        ("similarity", "similarity to the input", meaning_bar),
        ("repeated_trigram_share", "repeated word trigrams", None),
    ]
    names = list(scores)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    rng = np.random.default_rng(0)
    for ax, (column, title, line) in zip(axes, panels):
        data = [scores[n][column].astype(float).replace([np.inf, -np.inf], np.nan).dropna().to_numpy() for n in names]
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.5)
        if line is not None:
            ax.axhline(line, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def clip_text(text, chars: int = 300, lines: int = 8) -> str:
    """At most ``chars`` characters and ``lines`` lines: ".\\n.\\n." outputs must not make 400-px rows."""
    text = str(text)
    kept = "\n".join(text.splitlines()[:lines])
    kept = kept if len(kept) <= chars else kept[:chars].rstrip()
    return kept + (" …" if kept != text else "")


def examples_frame(sources, outputs, scores: pd.DataFrame, rows, chars: int = 300) -> pd.DataFrame:
    """Selected rows as a readable table: input and output (clipped), score and why it failed."""
    rows = list(rows)
    return pd.DataFrame(
        {
            "input": [clip_text(sources[i], chars) for i in rows],
            "output": [clip_text(outputs[i], chars) for i in rows],
            "score": [f"{scores['score'].iloc[i]:.2f}" for i in rows],
            "P(human)": [f"{scores['human_proba'].iloc[i]:.2f}" for i in rows],
            "similarity": [f"{scores['similarity'].iloc[i]:.2f}" for i in rows],
            "fails on": [why_failed(scores.iloc[i]) for i in rows],
        },
        index=pd.Index(rows, name="eval row"),
    )


def why_failed(row) -> str:
    """A row's failure in words, with the details (which fluency check, which invented entity)."""
    if row["success"]:
        return "succeeds"
    parts = []
    for part in str(row["failure"]).split(", "):
        if part == "are not fluent" and row["fluency_problems"]:
            part += f" ({row['fluency_problems']})"
        if part == "invent details":
            added = [e for k in ENTITY_KINDS for e in row[f"added_{k}"]][:4]
            part += f" ({', '.join(added)})"
        parts.append(part)
    return "; ".join(parts)


def _plain(value):
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    return value


def text_record(row) -> dict:
    """One scored text as JSON-able values (also ``python -m ai2human.score``'s output lines)."""
    extra = [k for k in row.index if k.startswith("p_human_hub:")]  # hub_detectors, named by model id
    record = {k: _plain(row[k]) for k in (*RECORD_FIELDS, *extra) if k in row.index}
    record["added"] = {k: list(row[f"added_{k}"]) for k in ENTITY_KINDS}
    return record


def output_records(pairs: pd.DataFrame, outputs: dict[str, list[str]], scores: dict[str, pd.DataFrame]) -> list[dict]:
    """One auditable record per evaluated row: the input, every system's output and its scores."""
    records = []
    for i in range(len(pairs)):
        record = {"row": int(pairs["row"].iloc[i]) if "row" in pairs else i, "input": pairs["ai"].iloc[i], "systems": {}}
        for name, texts in outputs.items():
            record["systems"][name] = {"output": texts[i], **text_record(scores[name].iloc[i])}
        records.append(record)
    return records


def save_jsonl(records: list[dict], path: str | Path) -> Path:
    """Write one JSON object per line, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)
    return path
