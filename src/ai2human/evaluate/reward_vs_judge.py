"""Reward against a judge it never saw: one row per system, the reward beside the held-out signals.

The preference stage (``02b_prefer``) saves the reward it optimised (``rundir.REWARD``) and a
second adapter (``rundir.DPO_ADAPTER``). Here every system's outputs are scored by that reward
and, separately, by the signals the reward never used: the held-out judge (``judge.py``: other
training rows, other features) and, on GPU runs, Fast-DetectGPT. A DPO model whose reward rises
while these do not has learnt the reward, not human writing; ``verdict.reward_sentence`` says so.

Held-out success is the yardstick's success with the held-out judge in the detectors' place:
judged human by the judge AND fluent AND meaning kept AND nothing invented AND not empty AND not
cut off (the yardstick's own per-text columns).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.evaluate.detector import HUMAN_THRESHOLD
from ai2human.rundir import DPO_ADAPTER, REWARD

DPO = "dpo"  # the system name of the preference-trained adapter
QUALITY_CONDITIONS = ("fluent", "meaning_kept", "invents_nothing", "not_empty", "not_truncated")
# column -> its header in the report, in the table's order
COLUMNS = {
    "reward_mean": "mean reward (what DPO optimised)",
    "judge_p_human_mean": "held-out judge: mean P(human)",
    "judge_human_share": "held-out judge: judged human",
    "held_out_success_rate": "held-out success",
    "fast_detect_human_share": "Fast-DetectGPT: judged human",
}


def dpo_adapter(run_dir: str | Path) -> dict[str, Path]:
    """``{"dpo": folder}`` when the preference stage saved an adapter in the run, else ``{}``."""
    path = Path(run_dir) / DPO_ADAPTER
    return {DPO: path.resolve()} if (path / "adapter_config.json").is_file() else {}


def load_run_reward(run_dir: str | Path):
    """The reward the preference stage saved in the run (``prefer.reward.Reward``), or None without one."""
    path = Path(run_dir) / REWARD
    if not path.is_file():
        return None
    from ai2human.prefer.reward import load_reward  # only runs with a preference stage need it

    return load_reward(path)


def reward_scores(reward, embedder, sources, outputs: dict[str, list[str]], truncated: dict) -> dict[str, np.ndarray] | None:
    """``system -> per-text reward``; None without a reward (no preference stage in this run)."""
    if reward is None:
        return None
    return {name: reward.score(embedder, sources, texts, truncated.get(name))["reward"].to_numpy(float)
            for name, texts in outputs.items()}


def held_out_frame(judge, scores: pd.DataFrame, texts, reward=None) -> pd.DataFrame:
    """Per text: the reward (nan without one), the judge's P(human) and verdict, and held-out success
    (the judge's verdict AND the yardstick's other conditions)."""
    p_human = judge.predict_human_proba(texts)
    judged = p_human >= HUMAN_THRESHOLD
    passes = scores[list(QUALITY_CONDITIONS)].astype(bool).all(axis=1).to_numpy()
    return pd.DataFrame({"reward": np.full(len(p_human), np.nan) if reward is None else np.asarray(reward, float),
                         "p_human_judge": p_human, "judged_human_judge": judged, "held_out_success": judged & passes},
                        index=scores.index)


def per_text(outputs: dict[str, list[str]], scores: dict[str, pd.DataFrame], judge,
             rewards: dict[str, np.ndarray] | None = None) -> dict[str, pd.DataFrame]:
    """``system -> held_out_frame``, for the table and for eval_outputs.jsonl's per-text records."""
    return {name: held_out_frame(judge, scores[name], texts, None if rewards is None else rewards[name])
            for name, texts in outputs.items()}


def reward_vs_judge(held_out: dict[str, pd.DataFrame], scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Systems (rows, in ``held_out``'s order) x COLUMNS; ``reward_mean`` is nan without a reward and
    ``fast_detect_human_share`` is present only when the yardstick used Fast-DetectGPT."""
    rows = {}
    for name, frame in held_out.items():
        row = {"reward_mean": float(frame["reward"].mean()) if frame["reward"].notna().any() else float("nan"),
               "judge_p_human_mean": float(frame["p_human_judge"].mean()),
               "judge_human_share": float(frame["judged_human_judge"].mean()),
               "held_out_success_rate": float(frame["held_out_success"].mean())}
        if "p_human_fast_detect" in scores[name]:
            row["fast_detect_human_share"] = float((scores[name]["p_human_fast_detect"] >= HUMAN_THRESHOLD).mean())
        rows[name] = row
    table = pd.DataFrame(rows).T
    table.index.name = "system"
    return table[[c for c in COLUMNS if c in table]]


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings under readable headers: shares as %, means with three decimals (a tiny
    model's rewards sit near 0), n/a where there is no number."""
    def cell(column, value):
        if value != value:
            return "n/a"
        return f"{100 * value:.0f}%" if column.endswith(("_share", "_rate")) else f"{value:.3f}"

    return pd.DataFrame({COLUMNS[c]: [cell(c, v) for v in table[c]] for c in table.columns}, index=table.index)


def quality_frame(quality: dict, judge_quality: dict) -> pd.DataFrame:
    """Each detector's validation quality, formatted: the evaluation's detectors, then the held-out judge."""
    from ai2human.evaluate.yardstick import DETECTOR_NAMES

    rows = {DETECTOR_NAMES.get(k, k): q for k, q in quality.items()}
    rows["held-out judge (stylometric, judge half)"] = judge_quality
    frame = pd.DataFrame(rows).T[["roc_auc", "tpr_at_1pct_fpr", "accuracy", "n_human", "n_ai"]]
    return frame.astype(object).apply(lambda col: col.map(("{:.0f}" if col.name.startswith("n_") else "{:.3f}").format))


def takeaway(table: pd.DataFrame, judge, dpo_found: bool, reward_found: bool) -> str:
    """The section's one-line conclusion: what was compared, and the judge's own strength."""
    q = judge.quality
    strength = (f"the held-out judge separates the validation split's human and AI texts with ROC AUC {q['roc_auc']:.2f} "
                f"(TPR at 1% FPR {q['tpr_at_1pct_fpr']:.2f}), trained on {judge.info['train_rows']} rows the reward never saw")
    if not dpo_found:
        return (f"no DPO adapter was found (run_dir/{DPO_ADAPTER}: run 02b_prefer to train one), so there is no reward "
                f"gain to check; {strength}. Fine-tuned held-out success {table.loc['finetuned', 'held_out_success_rate']:.0%}.")
    if not reward_found:
        return (f"the DPO adapter was scored, but the run has no {REWARD}, so only the held-out side is shown; {strength}.")
    d, f = table.loc[DPO], table.loc["finetuned"]
    return (f"DPO moved the mean reward {f['reward_mean']:.3f} -> {d['reward_mean']:.3f} and held-out success "
            f"{f['held_out_success_rate']:.0%} -> {d['held_out_success_rate']:.0%}; {strength}.")


def metrics(table: pd.DataFrame, judge, dpo: dict[str, Path], reward_found: bool) -> dict:
    """What ``eval_metrics.json`` keeps under ``reward_vs_judge``."""
    systems = {name: {k: (None if v != v else round(float(v), 4)) for k, v in row.items()}
               for name, row in table.to_dict(orient="index").items()}
    return {"systems": systems, "judge_quality": judge.quality, "judge_train_rows": judge.info["train_rows"],
            "judge_features": judge.info["features"], "dpo_adapter": str(dpo[DPO]) if dpo else None,
            "reward_found": reward_found}
