"""Lengths of the texts and of the training examples: characters, words, tokens, their
percentiles, and the ``max_seq_length`` they call for.

The full training example (prompt + AI text + human response + EOS, exactly as fine-tuning formats
it) is what ``max_seq_length`` limits; an example longer than it is dropped in training by default
(``overlong="drop"``) or cut short (``overlong="truncate"``). ``share_over`` says how many.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ai2human.data.prompts import format_example

PERCENTILES = (50, 90, 95, 99)
OVERLONG_WARNING_SHARE = 0.10  # the fine-tuning notebook warns above this share


def percentiles(values: Iterable[float], qs: Sequence[float] = PERCENTILES) -> dict[str, float]:
    """``{"count", "mean", "p50", "p90", ..., "max"}`` (numpy's linear interpolation)."""
    arr = np.asarray(values if hasattr(values, "__len__") else list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("percentiles of an empty list")
    out = {"count": int(arr.size), "mean": float(arr.mean())}
    out.update({f"p{q:g}": float(v) for q, v in zip(qs, np.percentile(arr, qs))})
    out["max"] = float(arr.max())
    return out


def power_of_two_at_least(value: float) -> int:
    """The smallest power of two >= ``value`` (1 for anything <= 1)."""
    return 1 if value <= 1 else 2 ** math.ceil(math.log2(value))


def recommend_max_seq_length(p90: float, p95: float) -> int:
    """The smallest power of two that covers both the 90th and the 95th percentile."""
    return power_of_two_at_least(max(p90, p95))


def share_over(summary_or_lengths: Mapping | Iterable[int], max_seq_length: int) -> float:
    """Share of training examples longer than ``max_seq_length`` tokens: the ones fine-tuning drops
    (``overlong="drop"``, the default) or cuts short (``overlong="truncate"``).

    Takes ``eda_summary.json``'s dict (its full-example token lengths are stored for this) or a
    list of lengths. An example of exactly ``max_seq_length`` tokens fits.
    """
    if isinstance(summary_or_lengths, Mapping):
        summary_or_lengths = summary_or_lengths["tokens"]["example"]["lengths"]
    lengths = np.asarray(list(summary_or_lengths), dtype=float)
    return float((lengths > max_seq_length).mean()) if lengths.size else 0.0


def overlong_warning(summary: Mapping, max_seq_length: int, threshold: float = OVERLONG_WARNING_SHARE) -> str:
    """A warning when more than ``threshold`` of the examples are longer than ``max_seq_length``, else ""."""
    share = share_over(summary, max_seq_length)
    if share <= threshold:
        return ""
    tokens = summary["tokens"]
    return (
        f"{share:.1%} of training examples are longer than max_seq_length={max_seq_length} "
        f"(counted with the {tokens['tokenizer']} tokenizer in eda_summary.json): overlong=\"drop\" leaves them "
        f"out, \"truncate\" cuts their responses short; "
        f"{tokens['example']['recommended_max_seq_length']} holds 95% of them"
    )


def length_table(texts: Iterable[str]) -> pd.DataFrame:
    """Characters and whitespace-separated words per text."""
    texts = list(texts)
    return pd.DataFrame({"chars": [len(t) for t in texts], "words": [len(t.split()) for t in texts]})


def example_texts(pairs: pd.DataFrame, eos_token: str) -> list[str]:
    """The full training examples exactly as fine-tuning formats them (prompt + human + EOS)."""
    return [format_example(ai, human, eos_token) for ai, human in zip(pairs["ai"], pairs["human"])]


def token_lengths(texts: Sequence[str], tokenizer, batch_size: int = 1000, add_special_tokens: bool = False) -> np.ndarray:
    """Tokens per text, tokenised in batches (a fast tokenizer encodes each batch in parallel).

    The columns are counted without special tokens (the text alone); pass ``add_special_tokens=True``
    for training examples, as a trainer's tokenizer call would (Qwen adds none; Llama adds a BOS).
    """
    if not getattr(tokenizer, "is_fast", False):
        import warnings

        warnings.warn(f"{type(tokenizer).__name__} is a slow tokenizer; counting tokens will take a while")
    texts = list(texts)
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            add_special_tokens=add_special_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # no "longer than model_max_length" warning: measuring that is the point
        )
        counts.extend(len(ids) for ids in batch["input_ids"])
    return np.asarray(counts, dtype=np.int64)


def length_stats(lengths: Mapping[str, pd.DataFrame]) -> dict:
    """``{"chars": {side: percentiles}, "words": {side: percentiles}}`` from ``length_table``s."""
    return {unit: {side: percentiles(table[unit]) for side, table in lengths.items()} for unit in ("chars", "words")}


def token_stats(lengths: Mapping[str, np.ndarray], max_seq_length: int) -> dict:
    """Percentiles and share over ``max_seq_length`` per side; the example also gets the
    recommendation and its per-example lengths (so any other max_seq_length can be checked)."""
    stats = {}
    for side, values in lengths.items():
        stats[side] = {**percentiles(values), "share_over_max_seq_length": share_over(values, max_seq_length)}
    if "example" in stats:
        example = stats["example"]
        example["power_of_two_p90"] = power_of_two_at_least(example["p90"])
        example["power_of_two_p95"] = power_of_two_at_least(example["p95"])
        example["recommended_max_seq_length"] = recommend_max_seq_length(example["p90"], example["p95"])
        example["lengths"] = [int(v) for v in lengths["example"]]
    return stats
