"""Read a training log and say, in plain words with the evidence, what went wrong and what to try.

The checks are the failures this project has met: a loss that barely moved (the reference v1 run),
a loss spike blamed on exploding gradients (hence ``max_grad_norm``), and eval loss climbing while
train loss falls (overfitting). Input is ``train_log.jsonl`` as written by
``training.log_callback`` (one record per trainer log: step, epoch and the logged keys).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

GRAD_SPIKE_FACTOR = 5.0  # grad norm above this many times the running median of earlier steps
LOSS_SPIKE_FACTOR = 1.5  # train loss above this many times the running median of earlier logs
MIN_HISTORY = 3  # earlier values needed before a spike can be called
WINDOW = 10  # the running median looks at this many earlier values, so early high losses fade out
FLAT_DROP = 0.02  # a train loss that fell less than 2% "did not fall"
RISING_EVALS = 2  # consecutive eval-loss rises that, with a falling train loss, mean overfitting
GAP_WARN = 0.20  # eval loss more than 20% above train loss is worth a warning


@dataclass
class Finding:
    kind: str  # overfitting, grad_spike, loss_spike, flat_loss, nan_loss, gap, no_eval, ok
    severity: str  # "warning" or "info"
    message: str  # what happened, with the numbers
    remedy: str = ""

    def __str__(self) -> str:
        mark = "WARNING" if self.severity == "warning" else "note"
        return f"[{mark}] {self.message}" + (f"\n    try: {self.remedy}" if self.remedy else "")


def load_records(log) -> list[dict]:
    """The records of a log: a ``train_log.jsonl`` path, a list of records or a DataFrame."""
    if isinstance(log, pd.DataFrame):
        return [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))} for r in log.to_dict("records")]
    if isinstance(log, (str, Path)):
        from ai2human.train.trainer import read_log_records

        return read_log_records(log)
    return list(log)


def load_log(log) -> pd.DataFrame:
    """A log as a DataFrame sorted by step (missing keys are NaN)."""
    frame = pd.DataFrame(load_records(log))
    if frame.empty:
        return pd.DataFrame(columns=["step"])
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def train_series(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``step`` and ``column`` for the records that logged it (train loss, grad_norm, learning_rate...)."""
    if column not in frame:
        return pd.DataFrame(columns=["step", column])
    return frame.loc[frame[column].notna(), ["step", column]].reset_index(drop=True)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _spikes(series: pd.DataFrame, column: str, factor: float) -> list[tuple[int, float, float]]:
    """``(step, value, running median before it)`` where value > factor x that median."""
    out, history = [], []
    for step, value in zip(series["step"], series[column]):
        if not math.isfinite(value):
            continue
        if len(history) >= MIN_HISTORY:
            median = statistics.median(history[-WINDOW:])
            if median > 0 and value > factor * median:
                out.append((int(step), float(value), median))
        history.append(float(value))
    return out


def _spike_finding(frame: pd.DataFrame, column: str, factor: float, kind: str, label: str, advice: str) -> list[Finding]:
    """One warning listing the steps where ``column`` jumped above ``factor`` x its running median."""
    spikes = _spikes(train_series(frame, column), column, factor)
    if not spikes:
        return []
    listed = ", ".join(f"step {s}: {_fmt(v)} (median before {_fmt(m)})" for s, v, m in spikes[:5])
    more = f" and {len(spikes) - 5} more" if len(spikes) > 5 else ""
    return [Finding(kind, "warning",
                    f"{label} spike{'s' if len(spikes) > 1 else ''} above {factor:g}x the running median: {listed}{more}",
                    advice)]


def check_grad_spikes(frame: pd.DataFrame, factor: float = GRAD_SPIKE_FACTOR) -> list[Finding]:
    return _spike_finding(
        frame, "grad_norm", factor, "grad_spike", "gradient-norm",
        "max_grad_norm clips each update (1.0 by default; lower it to 0.3-0.5 if spikes persist); "
        "lower learning_rate or raise warmup_steps; look for unusual (very long or garbled) examples")


def check_loss_spikes(frame: pd.DataFrame, factor: float = LOSS_SPIKE_FACTOR) -> list[Finding]:
    return _spike_finding(
        frame, "loss", factor, "loss_spike", "train-loss",
        "usually an exploding gradient (see the gradient-norm plot): keep max_grad_norm at 1.0 or lower, "
        "lower learning_rate, raise warmup_steps; a single spike the loss recovers from is harmless")


def check_nan(records: list[dict]) -> list[Finding]:
    """Non-finite losses or gradient norms (from the raw records: in a DataFrame a key that was not
    logged is NaN too)."""
    bad = [
        (r.get("step"), key)
        for r in records
        for key in ("loss", "eval_loss", "grad_norm")
        if isinstance(r.get(key), float) and not math.isfinite(r[key])
    ]
    if not bad:
        return []
    listed = ", ".join(f"{key} at step {step}" for step, key in bad[:5])
    return [Finding(
        "nan_loss", "warning", f"non-finite values logged: {listed}",
        "lower learning_rate; with fp16 (T4) look for overflow; make sure no example has an empty response",
    )]


def check_flat_loss(frame: pd.DataFrame, min_drop: float = FLAT_DROP) -> list[Finding]:
    series = train_series(frame, "loss")
    values = [v for v in series["loss"] if math.isfinite(v)]
    if len(values) < 3:
        return []
    k = max(1, len(values) // 5)
    start, end = statistics.fmean(values[:k]), statistics.fmean(values[-k:])
    drop = (start - end) / start if start > 0 else 0.0
    if drop >= min_drop:
        return []
    steps = series["step"].tolist()
    return [Finding(
        "flat_loss", "warning",
        f"the train loss did not fall: {_fmt(start)} (mean of the first {k} log{'s' if k > 1 else ''}, from step {steps[0]}) "
        f"to {_fmt(end)} (last {k}, to step {steps[-1]}), a {drop:.1%} {'drop' if drop >= 0 else 'rise'} "
        f"(less than {min_drop:.0%})",
        "raise learning_rate (e.g. 1e-4 to 2e-4 for LoRA), train longer (max_steps / num_train_epochs), "
        "check warmup_steps is not most of the run, and check the masked-labels example: a response that is "
        "all masked leaves nothing to learn",
    )]


def check_overfitting(frame: pd.DataFrame, rising: int = RISING_EVALS) -> list[Finding]:
    evals = train_series(frame, "eval_loss")
    if len(evals) < rising + 1:
        return []
    steps, values = evals["step"].tolist(), evals["eval_loss"].tolist()
    train = train_series(frame, "loss")
    # The longest run of consecutive rises ending anywhere; report the first run long enough.
    run_start = 0
    for i in range(1, len(values) + 1):
        if i < len(values) and values[i] > values[i - 1]:
            continue
        if i - 1 - run_start >= rising:
            a, b = steps[run_start], steps[i - 1]
            before = train[train["step"] <= a]["loss"]
            after = train[(train["step"] > a) & (train["step"] <= b)]["loss"]
            if len(before) and len(after) and after.iloc[-1] < before.iloc[-1]:
                path = " -> ".join(_fmt(v) for v in values[run_start:i])
                return [Finding(
                    "overfitting", "warning",
                    f"eval loss rose for {i - 1 - run_start} evaluations in a row ({path} at steps "
                    f"{', '.join(str(s) for s in steps[run_start:i])}) while the train loss fell "
                    f"({_fmt(before.iloc[-1])} -> {_fmt(after.iloc[-1])}): overfitting; the best eval loss was "
                    f"{_fmt(min(values))} at step {steps[values.index(min(values))]}",
                    "stop earlier (early_stopping_patience: 2 keeps the best checkpoint, or max_steps near the best step), "
                    "lower learning_rate, raise lora_dropout (e.g. 0.05) or weight_decay, or train on more data",
                )]
        run_start = i
    return []


def check_gap(frame: pd.DataFrame, warn: float = GAP_WARN) -> list[Finding]:
    evals = train_series(frame, "eval_loss")
    train = train_series(frame, "loss")
    if evals.empty:
        return [Finding(
            "no_eval", "info",
            "no evaluation ran (val_size 0 or eval_steps 0), so overfitting cannot be checked",
            "set val_size: 0.2 and eval_steps: 0.2 to evaluate every 20% of the run",
        )]
    if train.empty:
        return []
    step, ev = int(evals["step"].iloc[-1]), float(evals["eval_loss"].iloc[-1])
    near = train[train["step"] <= step]
    tr = float((near if len(near) else train)["loss"].iloc[-1])
    gap = ev - tr
    rel = gap / tr if tr > 0 else 0.0
    text = f"last eval loss {_fmt(ev)} vs train loss {_fmt(tr)} at step {step}: gap {gap:+.3g} ({rel:+.0%})"
    if rel > warn:
        return [Finding(
            "gap", "warning", text + "; the model fits the training texts much better than unseen ones",
            "fewer steps or epochs, lower learning_rate, lora_dropout 0.05-0.1, or more training data",
        )]
    if rel < -warn:
        return [Finding("gap", "info", text + "; eval below train is common early on or when the eval texts are easier")]
    return [Finding("gap", "info", text)]


def diagnose(log) -> list[Finding]:
    """All findings for a log (path, records or DataFrame), warnings first."""
    records = load_records(log)
    frame = load_log(records)
    if "loss" not in frame and "eval_loss" not in frame:
        return [Finding("empty", "warning", "the log holds no loss values: did training run?", "check the Train section's output")]
    findings = (
        check_nan(records) + check_flat_loss(frame) + check_loss_spikes(frame)
        + check_grad_spikes(frame) + check_overfitting(frame) + check_gap(frame)
    )
    if not any(f.severity == "warning" for f in findings):
        n = int(frame["loss"].notna().sum()) if "loss" in frame else 0
        findings.insert(0, Finding(
            "ok", "info",
            f"no warning signs in {n} logged train losses: checked that the loss fell, for loss and gradient-norm "
            "spikes, for overfitting and for a large train/eval gap",
        ))
    return sorted(findings, key=lambda f: f.severity != "warning")


def report(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


def plot_training(log, grad_spike_factor: float = GRAD_SPIKE_FACTOR):
    """Three panels against step: train and eval loss, gradient norm (spikes marked), learning rate."""
    import matplotlib.pyplot as plt

    frame = load_log(log)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    ax = axes[0]
    train, evals = train_series(frame, "loss"), train_series(frame, "eval_loss")
    if len(train):
        ax.plot(train["step"], train["loss"], label="train loss", color="tab:blue")
    if len(evals):
        ax.plot(evals["step"], evals["eval_loss"], "o-", label="eval loss", color="tab:orange")
    ax.set(title="Loss", xlabel="step", ylabel="loss")
    ax.legend()
    ax = axes[1]
    grad = train_series(frame, "grad_norm")
    if len(grad):
        ax.plot(grad["step"], grad["grad_norm"], color="tab:green")
        spikes = _spikes(grad, "grad_norm", grad_spike_factor)
        if spikes:
            ax.scatter([s for s, _, _ in spikes], [v for _, v, _ in spikes], color="red", zorder=3,
                       label=f"> {grad_spike_factor:g}x running median")
            ax.legend()
    ax.set(title="Gradient norm (before clipping)", xlabel="step")
    ax = axes[2]
    lr = train_series(frame, "learning_rate")
    if len(lr):
        ax.plot(lr["step"], lr["learning_rate"], color="tab:purple")
    ax.set(title="Learning rate", xlabel="step")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
