"""Extra detectors from the Hugging Face Hub, for users with internet (``hub_detectors``, off by default).

Any text-classification model whose labels say which class is human ("human", "real") or which
is machine ("fake", "ai", "machine", "generated", "gpt") joins the verdict: a rewrite must pass it
too. The yardstick keeps only the model id and the label (the model is loaded again when needed),
so ``yardstick.joblib`` stays small and holds no third-party weights.
"""

from __future__ import annotations

import re

import numpy as np

from ai2human.errors import UserError

HUMAN_LABEL = re.compile(r"human|real", re.I)
MACHINE_LABEL = re.compile(r"fake|\bai\b|machine|generated|gpt|llm", re.I)
MAX_TOKENS = 512


def parse_hub_detectors(value: str) -> list[str]:
    """``"org/a, org/b"`` -> model ids; "" -> none."""
    return [v.strip() for v in str(value).split(",") if v.strip()]


def human_label(id2label: dict) -> tuple[int, bool]:
    """(index of the label to read, whether it is the human class); UserError when the labels say neither."""
    labels = {int(i): str(name) for i, name in id2label.items()}
    for i, name in labels.items():
        if HUMAN_LABEL.search(name):
            return i, True
    for i, name in labels.items():
        if MACHINE_LABEL.search(name):
            return i, False
    raise UserError(f"cannot tell which label means human-written among {sorted(labels.values())}; "
                    "hub_detectors needs a classifier with a human/real or fake/AI/machine label")


class HubDetector:
    """P(human) from a sequence-classification model, read from the label that names a class."""

    def __init__(self, model_id: str, batch_size: int = 8):
        self.model_id, self.batch_size = model_id, batch_size
        self._loaded = None
        self.index, self.is_human = human_label(self._load()[0].config.id2label)

    def _load(self):
        if self._loaded is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            try:
                model = AutoModelForSequenceClassification.from_pretrained(self.model_id).eval()
                tokenizer = AutoTokenizer.from_pretrained(self.model_id)
            except OSError as exc:
                raise UserError(f"hub detector {self.model_id!r} cannot be loaded ({str(exc).splitlines()[0][:120]})") from None
            self._loaded = (model, tokenizer)
        return self._loaded

    def __getstate__(self):  # the weights are never pickled into the run folder
        return {**self.__dict__, "_loaded": None}

    @property
    def key(self) -> str:
        return f"hub:{self.model_id}"

    def predict_human_proba(self, texts) -> np.ndarray:
        import torch

        model, tokenizer = self._load()
        texts = [str(t) for t in texts]
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True, truncation=True,
                              max_length=MAX_TOKENS).to(next(model.parameters()).device)
            with torch.inference_mode():
                p = torch.softmax(model(**batch).logits.float(), dim=-1)[:, self.index]
            out.extend(p.tolist())
        proba = np.asarray(out, float)
        return proba if self.is_human else 1.0 - proba
