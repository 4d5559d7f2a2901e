"""Chosen/rejected pairs from scored samples: per input, the best sample against the worst.

Best-vs-worst keeps one pair per input (the widest margin the samples offer, the usual choice for
on-policy DPO data, e.g. the "best-of-n vs worst-of-n" pairs of Tunstall et al.'s Zephyr recipe):
more pairs per input would repeat the same prompt and weigh inputs by their number of samples.
An input whose samples all score the same is a tie and teaches nothing; one whose margin is below
``min_margin`` is more likely a coin flip of the reward's noise than a real preference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PAIR_COLUMNS = ["input", "source", "prompt", "chosen", "rejected", "chosen_reward", "rejected_reward", "margin"]


def build_pairs(scored: pd.DataFrame, min_margin: float = 0.0) -> tuple[pd.DataFrame, dict]:
    """``(pairs, stats)`` from samples with columns ``input``, ``source``, ``prompt``, ``output``, ``reward``.

    Per input: chosen = the highest-reward sample, rejected = the lowest (the first of equals).
    Skipped: ties (every sample of the input scores the same, or it has a single sample) and
    margins below ``min_margin``. ``stats`` counts each and describes the kept margins."""
    rows, ties, below, margins_all = [], 0, 0, []
    for input_id, group in scored.groupby("input", sort=True):
        rewards = group["reward"].to_numpy(float)
        best, worst = int(np.argmax(rewards)), int(np.argmin(rewards))
        margin = float(rewards[best] - rewards[worst])
        margins_all.append(margin)
        if len(group) < 2 or margin <= 0.0:
            ties += 1
            continue
        if margin < min_margin:
            below += 1
            continue
        first = group.iloc[0]
        rows.append({"input": int(input_id), "source": first["source"], "prompt": first["prompt"],
                     "chosen": group["output"].iloc[best], "rejected": group["output"].iloc[worst],
                     "chosen_reward": float(rewards[best]), "rejected_reward": float(rewards[worst]), "margin": margin})
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    return pairs, pair_stats(pairs, len(margins_all), ties, below, min_margin)


def pair_stats(pairs: pd.DataFrame, inputs: int, ties: int, below: int, min_margin: float) -> dict:
    """What ``dpo_metrics.json`` and the report's table say about the pairs."""
    margins = pairs["margin"].to_numpy(float)
    quantiles = {f"margin_{name}": float(np.quantile(margins, q)) if len(margins) else None
                 for name, q in (("min", 0.0), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("max", 1.0))}
    return {"inputs_sampled": inputs, "pairs": len(pairs), "ties_skipped": ties, "below_margin_skipped": below,
            "min_margin": min_margin, "margin_mean": float(margins.mean()) if len(margins) else None, **quantiles,
            "chosen_reward_mean": float(pairs["chosen_reward"].mean()) if len(pairs) else None,
            "rejected_reward_mean": float(pairs["rejected_reward"].mean()) if len(pairs) else None}


def write_pairs(pairs: pd.DataFrame, path: str | Path) -> Path:
    """Every pair, one JSON line each, written whole or not at all (a temporary file, renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in pairs[PAIR_COLUMNS].to_dict(orient="records"):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_pairs(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pd.DataFrame(records, columns=PAIR_COLUMNS)
