"""Stop a run whose loss, gradient norm or weights stop being finite, before it saves them.

A learning rate of ``.inf`` trained three steps, exited 0 and saved an adapter whose 28 tensors
were all NaN (issue 16). The guard checks what the trainer logs (loss, gradient norm, eval loss)
and, just before each checkpoint, the trainable weights; ``run_training`` checks them once more
before saving the adapter. Only the logged values and the few LoRA weights at save time are read,
so the steps themselves pay nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

WATCHED = ("loss", "grad_norm", "eval_loss")


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite loss, gradient norm or weight; nothing past it was saved."""


def _last_checkpoint_note(output_dir: str | Path) -> str:
    from ai2human.train.checkpoints import newest_intact_checkpoint

    newest = newest_intact_checkpoint(Path(output_dir).parent)
    if newest is None:
        return "no finite checkpoint was saved before it"
    return f"the last finite checkpoint, {Path(newest).name}, is kept (resume: auto continues from it)"


def diverged(step: int, what: str, output_dir: str | Path) -> TrainingDiverged:
    return TrainingDiverged(
        f"training stopped at step {step}: {what}; the run is failed and no adapter was saved from it. "
        f"{_last_checkpoint_note(output_dir)}. Lower learning_rate (or max_grad_norm) and run again"
    )


def nonfinite_weights(model) -> list[str]:
    """Names of trainable parameters holding a NaN or an infinity (at most five)."""
    import torch

    bad = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and not bool(torch.isfinite(param).all()):
                bad.append(name)
                if len(bad) == 5:
                    break
    return bad


def check_finite_weights(model, step: int, output_dir: str | Path) -> None:
    bad = nonfinite_weights(model)
    if bad:
        raise diverged(step, f"non-finite trainable weights ({', '.join(bad)})", output_dir)


def finite_guard():
    """A ``TrainerCallback`` raising ``TrainingDiverged`` on a non-finite logged value, or before
    a checkpoint of non-finite weights is written."""
    from transformers import TrainerCallback

    class FiniteGuard(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            for key in WATCHED:
                value = (logs or {}).get(key)
                if isinstance(value, (int, float)) and not math.isfinite(value):
                    raise diverged(state.global_step, f"{key} is {value}", args.output_dir)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            # DefaultFlowCallback, which runs before us, has just decided whether this step saves.
            if control.should_save and model is not None:
                check_finite_weights(model, state.global_step, args.output_dir)

    return FiniteGuard()
