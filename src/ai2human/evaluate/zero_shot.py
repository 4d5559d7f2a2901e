"""Signals from the base model itself (adapter off): Fast-DetectGPT and its perplexity of a text.

Fast-DetectGPT (Bao et al., ICLR 2024, analytic criterion, github.com/baoguangsheng/fast-detect-gpt):
with the same model as sampling and scoring model, a text's conditional probability curvature is

    (sum_t log p(x_t) - sum_t E[log p]) / sqrt(sum_t Var[log p])

where the expectation and variance are over the model's own next-token distribution. Machine text
sits near the model's modes (high values); human text does not. It needs no training, only the
model the evaluation has already loaded, so it is a second detector independent of the TF-IDF one.
The same forward pass gives the model's perplexity of the text, the stronger fluency signal.

``zero_shot_detector`` ("auto"/"on"/"off"): auto uses it on a GPU; on a CPU it is slow, so only
when forced (the tests do, with the tiny model).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from ai2human.errors import UserError

SETTINGS = ("auto", "on", "off")
MAX_TOKENS = 512  # texts are scored on their first 512 tokens: enough for the criterion, bounded memory


def zero_shot_enabled(setting: str, device: str) -> bool:
    """Whether to compute the base-model signals: "auto" means on a GPU only."""
    value = str(setting).strip().lower()
    if value not in SETTINGS:
        raise UserError(f"zero_shot_detector must be one of {', '.join(SETTINGS)}, got {setting!r}")
    return value == "on" or (value == "auto" and device == "cuda")


def adapter_off(model):
    """``model.disable_adapter()`` on a PEFT model, nothing otherwise: the base model scores."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def _row_signals(logits, labels) -> tuple[float, float]:
    """(Fast-DetectGPT criterion, perplexity) of one text from its logits [T, V] and next tokens [T]."""
    import torch

    lprobs = torch.log_softmax(logits.float(), dim=-1)
    probs = lprobs.exp()
    log_likelihood = lprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    mean_ref = (probs * lprobs).sum(-1)
    var_ref = (probs * lprobs.square()).sum(-1) - mean_ref.square()
    criterion = (log_likelihood.sum() - mean_ref.sum()) / var_ref.sum().clamp_min(1e-12).sqrt()
    return float(criterion), math.exp(-float(log_likelihood.mean()))


def model_signals(model, tokenizer, texts, batch_size: int = 4, max_tokens: int = MAX_TOKENS) -> dict[str, np.ndarray]:
    """``{"fast_detect": criterion, "lm_perplexity": perplexity}`` per text (nan for texts under two
    tokens). Call it inside ``adapter_off(model)`` so the base model, not the rewriter, judges."""
    import torch

    import os

    # Unsloth's patched forward may skip materialising logits unless asked to (it saves memory in
    # training); the criterion needs them.
    os.environ.setdefault("UNSLOTH_RETURN_LOGITS", "1")
    texts = [str(t) for t in texts]
    crit, ppl = np.full(len(texts), np.nan), np.full(len(texts), np.nan)
    device = next(model.parameters()).device
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        # Texts with nothing to score (empty: zero tokens) stay nan; a batch of only those would
        # reach the model as a [B, 0] tensor, which it cannot take.
        # Sorted by length so each batch pads little (the texts range from a word to 512 tokens).
        todo = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: len(texts[i]))
        for start in range(0, len(todo), batch_size):
            rows = todo[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True,
                              max_length=max_tokens, add_special_tokens=False).to(device)
            if batch["input_ids"].shape[1] < 2:
                continue
            with torch.inference_mode():
                logits = model(**batch).logits
            for k, i in enumerate(rows):
                n = int(batch["attention_mask"][k].sum())
                if n < 2:
                    continue
                # One row at a time: [T, V] in float32 for a 152k vocabulary is ~0.3 GB per 512 tokens.
                crit[i], ppl[i] = _row_signals(logits[k, : n - 1], batch["input_ids"][k, 1:n])
    finally:
        tokenizer.padding_side = previous_side
    return {"fast_detect": crit, "lm_perplexity": ppl}


class SignalCache:
    """``model_signals`` computed once per distinct text: controls and systems repeat many texts."""

    def __init__(self, model, tokenizer, batch_size: int = 0):
        # 0: 16 texts a pass on a GPU (their logits, 16 x 512 x 152k in 16 bits, are ~2.5 GB: room
        # beside a 4-bit 7B model on a T4), 4 on a CPU.
        # The evaluation passes eval_batch_size, which may be far larger (a generation batch of 64
        # would need ~10 GB of logits here): capped at the same 16.
        if not batch_size:
            batch_size = 16 if next(model.parameters()).device.type == "cuda" else 4
        batch_size = min(batch_size, 16)
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.seen: dict[str, tuple[float, float]] = {}
        self.seconds = 0.0  # the forward passes' wall time: what the zero-shot signals add to a run

    def summary(self) -> dict:
        return {"texts_scored": len(self.seen), "seconds": round(self.seconds, 1), "batch_size": self.batch_size}

    def __call__(self, texts) -> dict[str, np.ndarray]:
        texts = [str(t) for t in texts]
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            started = time.perf_counter()
            with adapter_off(self.model):
                got = model_signals(self.model, self.tokenizer, new, self.batch_size)
            self.seconds += time.perf_counter() - started
            self.seen.update({t: (c, p) for t, c, p in zip(new, got["fast_detect"], got["lm_perplexity"])})
        pairs = np.array([self.seen[t] for t in texts], dtype=float).reshape(len(texts), 2)
        return {"fast_detect": pairs[:, 0], "lm_perplexity": pairs[:, 1]}


@dataclass
class ZeroShotDetector:
    """The criterion turned into P(human) by a logistic fit on the validation split's human and AI
    texts (high criterion = machine-like, so the slope is negative)."""

    coef: float
    intercept: float
    name: str = "Fast-DetectGPT"

    @classmethod
    def calibrate(cls, human_criterion, ai_criterion) -> "ZeroShotDetector":
        from sklearn.linear_model import LogisticRegression

        human, ai = np.asarray(human_criterion, float), np.asarray(ai_criterion, float)
        human, ai = human[np.isfinite(human)], ai[np.isfinite(ai)]
        if not len(human) or not len(ai):
            raise ValueError("Fast-DetectGPT calibration needs scored human and AI texts")
        x = np.r_[human, ai].reshape(-1, 1)
        fit = LogisticRegression(C=1.0).fit(x, np.r_[np.ones(len(human)), np.zeros(len(ai))])
        return cls(float(fit.coef_[0, 0]), float(fit.intercept_[0]))

    def predict_human_proba(self, criterion) -> np.ndarray:
        z = self.coef * np.asarray(criterion, float) + self.intercept
        # A text too short to score (nan) is not judged human by this detector.
        return np.where(np.isfinite(z), 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))), 0.0)
