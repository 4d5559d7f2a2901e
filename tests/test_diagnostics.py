"""diagnostics: the findings a reader relies on, from synthetic logs with known problems."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

from ai2human.train import diagnostics as D  # noqa: E402


def healthy_log(steps: int = 40) -> list[dict]:
    log = [{"step": s, "loss": 2.0 * 0.98**s, "grad_norm": 0.5 + 0.01 * (s % 3), "learning_rate": 1e-4} for s in range(1, steps + 1)]
    log += [{"step": s, "eval_loss": 2.1 * 0.98**s} for s in (8, 16, 24, 32, 40)]
    return log


def spike_and_overfit_log() -> list[dict]:
    """Train loss falls steadily with one spike at step 20; eval loss bottoms out at 16 then rises."""
    log = []
    for s in range(1, 41):
        log.append({"step": s, "loss": 2.0 - 0.02 * s + (2.5 if s == 20 else 0.0),
                    "grad_norm": 0.6 + (9.0 if s == 20 else 0.0), "learning_rate": 1e-4})
    log += [{"step": s, "eval_loss": e} for s, e in [(8, 1.90), (16, 1.80), (24, 1.85), (32, 1.95), (40, 2.10)]]
    return log


def kinds(findings) -> set[str]:
    return {f.kind for f in findings if f.severity == "warning"}


def test_names_a_loss_spike_and_rising_eval_loss():
    findings = D.diagnose(spike_and_overfit_log())
    assert {"loss_spike", "overfitting", "grad_spike"} <= kinds(findings)
    text = D.report(findings)
    assert "step 20" in text  # the evidence names where the spike was
    overfit = next(f for f in findings if f.kind == "overfitting")
    assert "1.8 at step 16" in overfit.message and overfit.remedy  # best eval loss and a remedy
    assert "early_stopping_patience" in overfit.remedy


def test_healthy_log_has_no_warnings():
    findings = D.diagnose(healthy_log())
    assert kinds(findings) == set()
    assert findings[0].kind == "ok"
    assert any(f.kind == "gap" for f in findings)


def test_flat_loss_like_the_reference_v1_run():
    log = [{"step": s, "loss": 1.95 - 0.0004 * s + 0.01 * (-1) ** s} for s in range(1, 60)]
    findings = D.diagnose(log)
    flat = next(f for f in findings if f.kind == "flat_loss")
    assert "did not fall" in flat.message and "learning_rate" in flat.remedy
    assert any(f.kind == "no_eval" for f in findings)


def test_a_falling_loss_is_not_flat():
    assert "flat_loss" not in kinds(D.diagnose(healthy_log()))


def test_eval_rising_while_train_rises_too_is_not_called_overfitting():
    log = [{"step": s, "loss": 1.0 + 0.01 * s} for s in range(1, 41)]
    log += [{"step": s, "eval_loss": 1.0 + 0.02 * s} for s in (10, 20, 30, 40)]
    assert "overfitting" not in kinds(D.diagnose(log))


def test_single_eval_rise_is_not_overfitting():
    log = healthy_log()
    log[-1]["eval_loss"] = 5.0  # one rise at the last evaluation
    assert "overfitting" not in kinds(D.diagnose(log))


def test_non_finite_loss_is_reported():
    log = healthy_log() + [{"step": 41, "loss": float("nan")}]
    assert "nan_loss" in kinds(D.diagnose(log))


def test_large_train_eval_gap_warns():
    log = [{"step": s, "loss": 2.0 - 0.03 * s} for s in range(1, 41)]
    log += [{"step": s, "eval_loss": 1.9} for s in (20, 40)]
    gap = next(f for f in D.diagnose(log) if f.kind == "gap")
    assert gap.severity == "warning" and "gap" in gap.message


def test_reads_jsonl_and_skips_a_half_written_line(tmp_path):
    path = tmp_path / "train_log.jsonl"
    lines = [json.dumps(r) for r in spike_and_overfit_log()]
    path.write_text("\n".join(lines) + '\n{"step": 41, "lo', encoding="utf-8")
    assert len(D.load_records(path)) == len(lines)
    assert "overfitting" in kinds(D.diagnose(path))


def test_empty_log_says_so():
    assert D.diagnose([])[0].kind == "empty"


def test_plot_has_loss_grad_norm_and_learning_rate_panels():
    fig = D.plot_training(spike_and_overfit_log())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "Loss" and "Gradient norm" in titles[1] and titles[2] == "Learning rate"
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["train loss", "eval loss"]
    assert fig.axes[1].collections, "the gradient-norm spike is marked"
