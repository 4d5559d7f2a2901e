"""The plain-words conclusion: success first, the yardstick's own check second, components after.

The first sentence says whether the system's rewrites succeed and, when they fail, why (a
degenerate system reads as a failure there, never as "judged human 100%"). The second says
whether the controls held, i.e. whether the numbers can be trusted on this data. When the run
has a DPO model, one more sentence weighs its reward gain against the held-out judge
(``reward_vs_judge.py``): a reward that rises while the judge does not is called reward hacking.
"""

from __future__ import annotations

import pandas as pd

from ai2human.evaluate.controls import trust_problems
from ai2human.evaluate.fluency import CHECK_WORDS
from ai2human.evaluate.summary import SYSTEM_LABELS
from ai2human.evaluate.yardstick import CONDITIONS, DETECTOR_NAMES, MIN_VOTING_AUC

DEGENERATE = {CHECK_WORDS[k] for k in ("repeated_trigram_share", "distinct_2", "nonword_share", "no_words")}
SUCCEEDS = 0.5  # above this success rate a system "succeeds" in the first sentence's words
REWARD_TOLERANCE = 0.02  # a mean reward, success rate or P(human) "rises" only by more than this (sampling noise)


def pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.0f}%"


def failure_reasons(scores: pd.DataFrame, limit: int = 3) -> str:
    """The most common reasons texts fail, with their shares: "100% are not fluent (degenerate:
    no words), 92% lose the meaning"."""
    shares = {c: float((~scores[c].astype(bool)).mean()) for c in CONDITIONS if c in scores}
    parts = []
    for condition, share in sorted(shares.items(), key=lambda kv: -kv[1])[:limit]:
        if share <= 0:
            continue
        text = f"{pct(share)} {CONDITIONS[condition]}"
        if condition == "fluent":
            problems = pd.Series([p for cell in scores["fluency_problems"] for p in cell.split("; ") if p])
            if len(problems):
                top = list(problems.value_counts().index[:2])
                kind = "degenerate: " if set(top) & DEGENERATE else ""
                text += f" ({kind}{', '.join(top)})"
        parts.append(text)
    return ", ".join(parts) if parts else "no single condition dominates"


def headline(name: str, row: dict, scores: pd.DataFrame) -> str:
    """First sentence: succeed or fail, with the success rate, the mean score and why."""
    Name = name[0].upper() + name[1:]
    rate, score = row["success_rate"], row["score_mean"]
    if rate > SUCCEEDS:
        rest = failure_reasons(scores[~scores["success"]]) if (~scores["success"]).any() else "none fail"
        return f"{Name}'s rewrites succeed {pct(rate)} of the time (mean score {score:.2f}); of the rest, {rest}."
    return f"{Name}'s rewrites fail: only {pct(rate)} succeed (mean score {score:.2f}), because {failure_reasons(scores)}."


def trust_sentence(controls: pd.DataFrame) -> str:
    problems = trust_problems(controls)
    if problems:
        return ("The yardstick is NOT trustworthy on this data: " + "; ".join(problems)
                + ". Read every number below with that in mind.")
    pos = controls[controls["should"] == "succeed"]["success_rate"]
    neg = controls[controls["should"] == "fail"]["success_rate"]
    return (f"The yardstick holds on this data: its positive controls succeed {pct(pos.min())}-{pct(pos.max())} "
            f"and its {len(neg)} negative controls at most {pct(neg.max())}.")


def reward_sentence(check: pd.DataFrame | None, system: str = "finetuned", dpo: str = "dpo") -> str:
    """The DPO model's reward gain over ``system`` against the held-out judge's; "" without a DPO model.

    ``check``: ``reward_vs_judge.reward_vs_judge``'s table. The judge "rises" when its held-out
    success rate or its mean P(human) rises by more than REWARD_TOLERANCE.
    """
    if check is None or dpo not in check.index or system not in check.index:
        return ""
    d, s = check.loc[dpo], check.loc[system]
    label = SYSTEM_LABELS.get(system, system)
    judge = (f"the held-out judge's success {pct(s['held_out_success_rate'])} -> {pct(d['held_out_success_rate'])}, "
             f"its mean P(human) {s['judge_p_human_mean']:.3f} -> {d['judge_p_human_mean']:.3f}")
    if "fast_detect_human_share" in check:
        judge += f"; Fast-DetectGPT judges human {pct(s['fast_detect_human_share'])} -> {pct(d['fast_detect_human_share'])}"
    if d["reward_mean"] != d["reward_mean"] or s["reward_mean"] != s["reward_mean"]:
        return f"The DPO model could not be checked for reward hacking (the run saved no reward); against {label}: {judge}."
    reward = f"mean reward {s['reward_mean']:.3f} -> {d['reward_mean']:.3f}"
    judge_rises = max(d["held_out_success_rate"] - s["held_out_success_rate"],
                      d["judge_p_human_mean"] - s["judge_p_human_mean"]) > REWARD_TOLERANCE
    if d["reward_mean"] - s["reward_mean"] <= REWARD_TOLERANCE:
        return f"DPO did not raise the reward over {label} ({reward}; {judge})."
    if judge_rises:
        return f"The held-out judge confirms the DPO gain: the reward and the judge it never saw rise together ({reward}; {judge})."
    return (f"This looks like reward hacking: DPO raised the reward over {label} ({reward}) but not the held-out judge "
            f"({judge}); the model learnt the reward's detector, not human-like writing.")


def verdict(table: pd.DataFrame, scores: dict[str, pd.DataFrame], quality: dict, controls: pd.DataFrame,
            system: str = "finetuned", reward_check: pd.DataFrame | None = None) -> str:
    """The conclusion the notebook prints and ``eval_metrics.json`` keeps, every figure from the inputs."""
    t = table.T.to_dict()
    s = t[system]
    name = SYSTEM_LABELS.get(system, system)
    others = ", ".join(f"{SYSTEM_LABELS.get(o, o)} {pct(t[o]['success_rate'])} ({t[o]['score_mean']:.2f})"
                       for o in table.index if o != system)
    detectors = "; ".join(f"{DETECTOR_NAMES.get(d, d)} ROC AUC {q['roc_auc']:.2f}, TPR at 1% FPR {q['tpr_at_1pct_fpr']:.2f}"
                          + ("" if d == "tfidf" or not q["roc_auc"] < MIN_VOTING_AUC else " (near chance here: left out of the verdict)")
                          for d, q in quality.items())
    lines = [
        headline(name, s, scores[system]),
        trust_sentence(controls),
        f"Success rate (mean score) of the other systems: {others}.",
        f"Detectors on the validation split's held-out texts: {detectors}.",
        f"Components for {name}: judged human by every detector {pct(s['judged_human_share'])}, fluent "
        f"{pct(s['fluent_share'])}, meaning kept {pct(s['meaning_kept_share'])} (mean similarity {s['similarity_mean']:.2f}), "
        f"invents a number, date, name or quote {pct(s['adds_any_share'])}, empty {pct(s['empty_share'])}, "
        f"cut off {pct(s['truncated_share'])}.",
    ]
    if "style_distance" in s:
        lines.append(f"Its style sits {s['style_distance']:.2f} human standard deviations from the human texts on average; "
                     f"its rewrites are {s['length_ratio_median']:.2f}x the input's length (median).")
    if "base" in t and system != "base":
        gain = s["success_rate"] - t["base"]["success_rate"]
        lines.append(f"Against the base model without the adapter: success {100 * gain:+.0f} points, "
                     f"mean score {s['score_mean'] - t['base']['score_mean']:+.2f}.")
    if sentence := reward_sentence(reward_check, system):
        lines.append(sentence)
    return "\n".join(lines)
