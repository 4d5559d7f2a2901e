"""Batched generation for evaluation and the chat app: left padding, responses only, tokens/s.

One ``generate`` call turns prompts into responses the way the evaluation needs them: batched with
left padding (so every row's new tokens start at the same column), the prompt stripped, each text
cut at its first EOS, and per text whether it stopped on its own or ran into ``max_new_tokens``.

    PYTHONPATH=src python scripts/gpu_generation_bench.py   # batched vs one-at-a-time tokens/s
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ai2human.data.prompts import RESPONSE_MARKER

# A base model that does not stop tends to start the next Alpaca block; what follows it is not part
# of its answer. The runaway still shows as hit_limit (no EOS), so nothing is hidden.
TEMPLATE_MARKERS = ("\n### Instruction:", "\n### Input:", "\n" + RESPONSE_MARKER.strip())


@dataclass
class GenerationResult:
    """Responses in prompt order, with what the speed and truncation metrics need."""

    texts: list[str]
    new_tokens: list[int]  # generated tokens per text, up to and including its EOS
    hit_limit: list[bool]  # True: reached max_new_tokens without EOS (the text is truncated)
    seconds: float  # wall time of the generate calls only (no tokenisation or decoding)
    batch_size: int = 1
    settings: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return sum(self.new_tokens) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        """Numbers for ``eval_metrics.json``."""
        return {
            "texts": len(self.texts),
            "new_tokens": int(sum(self.new_tokens)),
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "batch_size": self.batch_size,
            "hit_limit": int(sum(self.hit_limit)),
            **self.settings,
        }


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every id that ends a response: the tokenizer's EOS and the generation config's (may be a list)."""
    ids = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        if value is None:
            continue
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    return {int(i) for i in ids}


def cut_at_template(text: str) -> str:
    """The text before any Alpaca section marker the model starts on its own."""
    for marker in TEMPLATE_MARKERS:
        text = text.split(marker, 1)[0]
    return text.strip()


def _model_device(model):
    import torch

    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")


def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    min_new_tokens: int = 0,
    stop_at_template: bool = True,
    **generate_kwargs,
) -> GenerationResult:
    """Generate one response per prompt, ``batch_size`` prompts at a time; results in prompt order.

    ``temperature`` 0 is greedy decoding; above 0 samples with ``top_p``, reproducibly for a given
    ``seed``. Prompts are grouped by length so a batch wastes little on padding. ``min_new_tokens``
    (= ``max_new_tokens``) forces fixed-length outputs for speed benchmarks. Extra keyword
    arguments go to ``model.generate`` unchanged.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    sampling = temperature > 0
    settings = dict(max_new_tokens=max_new_tokens, do_sample=sampling, pad_token_id=pad_id, eos_token_id=sorted(eos_ids))
    if sampling:
        settings.update(temperature=temperature, top_p=top_p)
    else:  # unset the model's sampling defaults so transformers does not warn on every call
        settings.update(temperature=None, top_p=None, top_k=None)
    if min_new_tokens:
        settings["min_new_tokens"] = min_new_tokens

    info = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    if not prompts:
        return GenerationResult([], [], [], 0.0, batch_size, info)
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    texts, new_tokens, hit_limit = [""] * len(prompts), [0] * len(prompts), [False] * len(prompts)
    device = _model_device(model)
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens of every row then start at the same column
    seconds = 0.0
    try:
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            with torch.inference_mode():
                output = model.generate(**batch, **settings, **generate_kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - began
            generated = output[:, batch["input_ids"].shape[1] :].tolist()
            for i, ids in zip(rows, generated):
                stop = next((k for k, t in enumerate(ids) if t in eos_ids), None)
                kept = ids if stop is None else ids[:stop]
                new_tokens[i] = len(ids) if stop is None else stop + 1
                hit_limit[i] = stop is None and len(ids) >= max_new_tokens
                text = tokenizer.decode(kept, skip_special_tokens=True)
                texts[i] = cut_at_template(text) if stop_at_template else text.strip()
    finally:
        tokenizer.padding_side = previous_side
    return GenerationResult(texts, new_tokens, hit_limit, seconds, batch_size, info)
