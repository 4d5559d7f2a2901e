"""What the prefer notebook shows and writes: tables, plots, takeaways and ``dpo_metrics.json``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ai2human.evaluate.report import clip_text

PAIR_ROWS = {"inputs_sampled": "training inputs sampled", "pairs": "pairs kept (best vs worst sample)",
             "ties_skipped": "ties skipped (all samples scored the same)",
             "below_margin_skipped": "skipped: margin below dpo_min_margin", "margin_min": "margin, smallest",
             "margin_median": "margin, median", "margin_max": "margin, largest",
             "chosen_reward_mean": "chosen reward, mean", "rejected_reward_mean": "rejected reward, mean"}


def reward_summary(scored: pd.DataFrame) -> dict:
    """The sampled rewrites in a few numbers (mean reward, strict score and success, cut off)."""
    return {"samples": len(scored), "inputs": int(scored["input"].nunique()) if len(scored) else 0,
            "reward_mean": float(scored["reward"].mean()), "reward_median": float(scored["reward"].median()),
            "score_mean": float(scored["score"].mean()), "success_rate": float(scored["success"].mean()),
            "truncated_share": float(scored["hit_limit"].mean()), "empty_share": float((~scored["not_empty"]).mean())}


def pair_table(stats: dict) -> pd.DataFrame:
    return pd.DataFrame({"value": [stats.get(k) for k in PAIR_ROWS]}, index=list(PAIR_ROWS.values()))


def plot_margins(pairs: pd.DataFrame, min_margin: float):
    """Histogram of the kept pairs' reward margins (log scale: a weak model's margins span decades)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    margins = pairs["margin"].to_numpy(float)
    if len(margins):
        bins = np.logspace(np.log10(max(margins.min(), 1e-12)), np.log10(max(margins.max(), 1e-12)) + 1e-9, 20)
        ax.hist(margins, bins=bins, color="tab:blue")
        ax.set_xscale("log")
    if min_margin > 0:
        ax.axvline(min_margin, color="black", linestyle="--", label="dpo_min_margin")
        ax.legend()
    ax.set(xlabel="reward(chosen) - reward(rejected)", ylabel="pairs", title="Pair margins")
    fig.tight_layout()
    return fig


def step_table(log: list[dict]) -> pd.DataFrame:
    """TRL's per-step records: loss and its implicit rewards (beta x log-ratio to the reference)."""
    columns = ["step", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in log], columns=columns)


def plot_progress(probes: pd.DataFrame, steps: pd.DataFrame):
    """Left: mean reward of fresh held-out samples per DPO step (step 0 = SFT). Right: TRL's
    chosen-minus-rejected margin of the implicit reward per step."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2))
    left.plot(probes["step"], probes["reward_mean"], marker="o")
    left.set(xlabel="DPO step", ylabel="mean reward", title="Fresh samples, held-out inputs")
    if len(steps):
        right.plot(steps["step"], steps["rewards/margins"], marker=".", label="margin")
        right.plot(steps["step"], steps["rewards/chosen"], alpha=0.6, label="chosen")
        right.plot(steps["step"], steps["rewards/rejected"], alpha=0.6, label="rejected")
        right.axhline(0, color="grey", linewidth=0.8)
        right.legend()
    right.set(xlabel="DPO step", ylabel="beta x log-ratio to SFT", title="Chosen vs rejected (training pairs)")
    fig.tight_layout()
    return fig


def before_after(before: pd.DataFrame, after: pd.DataFrame, n: int = 3, chars: int = 300) -> pd.DataFrame:
    """The first sample of the same held-out inputs from the SFT adapter and from the DPO adapter."""
    first = lambda frame: frame[frame["sample"] == 0].set_index("input")  # noqa: E731
    b, a = first(before), first(after)
    inputs = [i for i in b.index if i in a.index][:n]
    return pd.DataFrame({
        "input": [clip_text(b.at[i, "source"], chars, 8) for i in inputs],
        "SFT": [clip_text(b.at[i, "output"], chars, 8) for i in inputs],
        "SFT reward": [b.at[i, "reward"] for i in inputs],
        "DPO": [clip_text(a.at[i, "output"], chars, 8) for i in inputs],
        "DPO reward": [a.at[i, "reward"] for i in inputs],
    })


def reward_change(probes: pd.DataFrame) -> dict:
    """Step 0 (SFT) against the last probe (DPO)."""
    first, last = probes.iloc[0], probes.iloc[-1]
    return {"sft_reward": float(first["reward_mean"]), "dpo_reward": float(last["reward_mean"]),
            "sft_log10_reward": float(first["log10_reward_mean"]), "dpo_log10_reward": float(last["log10_reward_mean"]),
            "sft_score": float(first["score_mean"]), "dpo_score": float(last["score_mean"]),
            "sft_success": float(first["success_rate"]), "dpo_success": float(last["success_rate"]),
            "steps": int(last["step"]), "rose": bool(last["reward_mean"] > first["reward_mean"])}


def takeaway(change: dict, probe_samples: int) -> str:
    direction = "higher" if change["rose"] else "not higher"
    ratio = change["dpo_reward"] / change["sft_reward"] if change["sft_reward"] > 0 else float("inf")
    return (f"Takeaway: on {probe_samples} fresh samples of held-out inputs, the mean reward is {change['dpo_reward']:.3g} "
            f"after {change['steps']} DPO steps against {change['sft_reward']:.3g} with the SFT adapter ({ratio:.2f}x, "
            f"{direction}; mean log10 reward {change['sft_log10_reward']:.2f} -> {change['dpo_log10_reward']:.2f}); the strict score goes {change['sft_score']:.3f} -> {change['dpo_score']:.3f} and the success "
            f"rate {change['sft_success']:.0%} -> {change['dpo_success']:.0%}. The reward's own detector judged this: "
            "the evaluation's held-out judge says whether it reads more human to a detector DPO never saw.")


def samples_record(scored: pd.DataFrame, n: int = 3) -> list[dict]:
    """A few samples for dpo_metrics.json (input clipped, output and its reward)."""
    first = scored[scored["sample"] == 0].head(n)
    return [{"input": int(r["input"]), "source": clip_text(r["source"], 400, 10), "output": r["output"],
             "reward": float(r["reward"])} for _, r in first.iterrows()]
