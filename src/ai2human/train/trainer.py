"""TRL's ``SFTTrainer`` with our callbacks: the JSONL log, the phase clock, the non-finite guard.

``transformers`` and TRL are imported inside the functions: Unsloth must patch them first.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path


def log_callback(path: str | Path):
    """A ``TrainerCallback`` appending every record the trainer logs to ``train_log.jsonl``.

    Each record holds the step, the epoch and the logged keys. The file feeds the plots and the
    diagnostics, so it must survive a Kaggle session that is cut off: each record is flushed as it
    is written, and a resumed run first drops the records past the checkpoint it resumes from, so
    no step appears twice.
    """
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):
        def __init__(self, path: Path):
            self.path = path

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # one writer when several processes train (distributed.py)
                return
            step = state.global_step  # > 0 when resumed from a checkpoint
            keep = [r for r in read_log_records(self.path) if r.get("step", 0) <= step] if step else []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in keep)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            record = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3)}
            record.update({k: _jsonable(v) for k, v in (logs or {}).items()})
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    return JsonlLogCallback(Path(path))


def _jsonable(value):
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def read_log_records(path: str | Path) -> list[dict]:
    """The records of a ``train_log.jsonl``; a half-written last line (a killed session) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def phase_clock():
    """A ``TrainerCallback`` timing the training steps apart from evaluation, checkpoints and the first step.

    The trainer's own ``train_tokens_per_second`` divides by the whole ``train()`` call, so
    evaluation passes and the first step (Unsloth compiles there) pull it far below the rate the
    GPU trains at. This clock times each optimizer step from ``on_step_begin`` to ``on_step_end``
    (forward, backward, optimizer; nothing else happens in between), reads the evaluation time
    from each evaluation's ``eval_runtime``, and counts the tokens the trainer counted. No extra
    GPU synchronisation: a step's queued GPU work lands in the next step's time, which evens out
    over a run.
    """
    from transformers import TrainerCallback

    class PhaseClock(TrainerCallback):
        def __init__(self):
            self.began = self.ended = 0.0
            self.tokens_at_start = 0
            self.step_s: list[float] = []
            self.tokens: list[int] = []  # num_input_tokens_seen after each step
            self.eval_s = 0.0
            self.evaluations = 0
            self._step_began = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()
            self.tokens_at_start = int(state.num_input_tokens_seen or 0)

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_s.append(time.perf_counter() - self._step_began)
            self.tokens.append(int(state.num_input_tokens_seen or 0))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.evaluations += 1
            self.eval_s += float((metrics or {}).get("eval_runtime") or 0.0)

        def on_train_end(self, args, state, control, **kwargs):
            self.ended = time.perf_counter()

        def summary(self) -> dict:
            """The session's time split and its training tokens/s (the first step left out)."""
            wall = (self.ended or time.perf_counter()) - self.began if self.began else 0.0
            first = self.step_s[0] if self.step_s else 0.0
            steady_s = sum(self.step_s[1:])
            if len(self.step_s) > 1 and steady_s > 0:
                rate = (self.tokens[-1] - self.tokens[0]) / steady_s
            elif self.step_s and first > 0:  # a one-step session: all it has
                rate = (self.tokens[0] - self.tokens_at_start) / first
            else:
                rate = None
            return {
                "train_tokens_per_second": round(rate, 1) if rate is not None else None,
                "train_steps_this_session": len(self.step_s),
                "first_step_s": round(first, 3),
                "train_steps_s": round(steady_s, 3),
                "evaluation_s": round(self.eval_s, 3),
                "evaluations_this_session": self.evaluations,
                "train_call_s": round(wall, 3),
                # checkpoints, logging, data loading and the trainer's own set-up
                "other_s": round(max(wall - first - steady_s - self.eval_s, 0.0), 3),
            }

    return PhaseClock()


def evaluation_lines(echo):
    """A ``TrainerCallback`` echoing one line per evaluation, in place of transformers' printer.

    Without progress bars (``disable_tqdm``) transformers prints every logged dict, 25 lines of
    raw floats in the demo; the loss curves show those. A line per evaluation still tells someone
    watching a long run on Kaggle where it stands.
    """
    from transformers import TrainerCallback

    class EvaluationLines(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics = metrics or {}
            train = next((r["loss"] for r in reversed(state.log_history) if "loss" in r), None)
            echo(f"step {state.global_step}/{state.max_steps}: eval loss {metrics.get('eval_loss', float('nan')):.4f}"
                 + (f", train loss {train:.4f}" if train is not None else "")
                 + f" ({metrics.get('eval_runtime', 0):.1f} s to evaluate)")

    return EvaluationLines()


class _FractionalStepsOnResume(logging.Filter):
    """Drops transformers' resume warning when its only mismatches are our fractional steps.

    ``eval_steps: 0.2`` means every 20% of the run; the checkpoint stores what that came to
    (``8``), so every resume warned ``0.2 (from args) != 8 (from trainer_state.json)`` although
    nothing differs. Any other mismatch still gets through.
    """

    LINE = re.compile(r"\t(\w+): (\S+) \(from args\) != (\S+) \(from trainer_state\.json\)")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "(from trainer_state.json)" not in message:
            return True
        found = self.LINE.findall(message)
        try:
            return not (found and all(name.endswith("_steps") and 0 < float(ours) < 1 for name, ours, _ in found))
        except ValueError:
            return True


def quiet_fractional_resume_warning() -> None:
    """Install the filter above once (transformers checks the arguments in ``trainer_utils``)."""
    logger = logging.getLogger("transformers.trainer_utils")
    if not any(isinstance(f, _FractionalStepsOnResume) for f in logger.filters):
        logger.addFilter(_FractionalStepsOnResume())


def build_trainer(*, model, tokenizer, args, train_dataset, eval_dataset=None, choice, log_path: str | Path,
                  early_stopping_patience: int = 0, callbacks: tuple = ()):
    """TRL's ``SFTTrainer`` (Unsloth's patched one when Unsloth was imported first) with our callbacks."""
    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer

    callbacks = [log_callback(log_path), *callbacks]
    if early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    # TRL's preparation maps (truncate, drop fully masked rows) are no-ops on our tokenised data.
    trainer = construct_trl_trainer(
        SFTTrainer,
        choice,
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    quiet_fractional_resume_warning()
    return trainer


def construct_trl_trainer(trainer_class, choice, **kwargs):
    """A TRL trainer (``SFTTrainer``, ``DPOTrainer``) built the same way for every stage: its dataset
    maps without progress bars, QLoRA's trainable weights in fp32 where the GPU lacks bf16, and no
    per-step printing when the bars are off (the reports plot the log instead)."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        trainer = trainer_class(**kwargs)
    finally:
        if bars:
            datasets.enable_progress_bars()
    if choice.backend == "hf" and choice.load_in_4bit and choice.dtype != "bfloat16":
        # TRL casts QLoRA adapters to bf16 (as the QLoRA paper does); a T4 has no bf16 and fp16
        # mixed precision needs fp32 master weights, so keep the few trainable weights in fp32.
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    if trainer.args.disable_tqdm:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer
