"""What the training benchmark trains on: example lengths per regime and synthetic token rows.

The benchmark measures speed and memory, which depend on how many tokens each example has and
which of them carry a loss, not on which tokens they are. So it skips text and tokenisation and
writes rows directly in the format ``training.tokenize_pairs`` produces: ``input_ids``,
``attention_mask`` and ``labels`` with -100 on the prompt, the last token an EOS.

Length regimes:

- ``full``: every example exactly ``max_seq_length`` tokens (the worst case; no padding at all).
- ``real`` and ``epoch``: lengths drawn from a dataset's formatted-example token lengths (an
  ``eda_summary.json``: ``summary["tokens"]["example"]["lengths"]``) or, without one, from a
  log-normal with the original EDA's shape: median ~1000 tokens and 12% above 2048 at
  ``max_seq_length = 2048`` (both scale with ``max_seq_length``). Examples longer than
  ``max_seq_length`` are dropped, as the fine-tuning notebook's ``overlong = "drop"`` does.

Only numpy and the standard library at import time: the CPU tests and the GPU worker share it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

IGNORE_INDEX = -100  # the label the loss skips (training.IGNORE_INDEX; not imported: training needs pandas)
REGIMES = ("full", "real", "epoch")
# The original EDA on the 3000-row data set, at max_seq_length 2048: median formatted example
# ~1000 tokens, 12% of examples longer than 2048.
REFERENCE_MEDIAN_SHARE = 1000 / 2048
REFERENCE_SHARE_OVER = 0.12
MIN_LENGTH = 16  # the Alpaca template alone is ~60 tokens; keep tiny test shapes legal too


@dataclass
class LengthSample:
    """Example lengths for one regime, and where they came from."""

    regime: str
    lengths: list[int]
    source: str  # "full", "log-normal(median=..., share_over=...)" or the eda_summary path
    drawn: int  # examples drawn before dropping the over-long ones
    dropped: int

    def summary(self) -> dict:
        arr = np.asarray(self.lengths)
        d = asdict(self)
        d.pop("lengths")
        d.update(
            rows=len(self.lengths),
            tokens=int(arr.sum()) if arr.size else 0,
            median=float(np.median(arr)) if arr.size else 0.0,
            mean=round(float(arr.mean()), 1) if arr.size else 0.0,
            p90=float(np.percentile(arr, 90)) if arr.size else 0.0,
            max=int(arr.max()) if arr.size else 0,
        )
        return d


def lognormal_sigma(median: float, threshold: float, share_over: float) -> float:
    """The sigma of a log-normal with this median that puts ``share_over`` of its mass above ``threshold``."""
    if not 0 < share_over < 0.5:
        raise ValueError(f"share_over must be in (0, 0.5), got {share_over}")
    if threshold <= median:
        raise ValueError(f"threshold {threshold} must be above the median {median}")
    return math.log(threshold / median) / NormalDist().inv_cdf(1 - share_over)


def eda_lengths(path: str | Path) -> list[int]:
    """Formatted-example token lengths stored by the EDA notebook in ``eda_summary.json``."""
    summary = json.loads(Path(path).read_text(encoding="utf-8"))
    try:
        lengths = summary["tokens"]["example"]["lengths"]
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no tokens.example.lengths (run the EDA notebook with a tokenizer)") from None
    lengths = [int(v) for v in lengths]
    if not lengths:
        raise ValueError(f"{path}: tokens.example.lengths is empty")
    return lengths


def sample_lengths(
    regime: str,
    rows: int,
    max_seq_length: int,
    seed: int = 3407,
    source_lengths: list[int] | None = None,
    source_name: str = "",
    median: float = 0.0,
    share_over: float = REFERENCE_SHARE_OVER,
) -> LengthSample:
    """``rows`` example lengths for ``regime``; deterministic for a seed.

    ``full``: ``rows`` examples of ``max_seq_length``. ``real`` / ``epoch``: ``rows`` examples are
    *drawn* (the data set's size) and the ones above ``max_seq_length`` dropped, so fewer remain,
    as in the notebook. From ``source_lengths`` (with replacement) when given, else from the
    log-normal with ``median`` (0 = ~1000 at 2048, scaled) and ``share_over`` above
    ``max_seq_length``.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    if regime == "full":
        return LengthSample(regime, [max_seq_length] * rows, "full", rows, 0)
    rng = np.random.default_rng(seed)
    if source_lengths:
        pool = np.asarray(source_lengths)
        source = source_name or "lengths"

        def draw(n):
            return rng.choice(pool, size=n, replace=True)
    else:
        median = median or REFERENCE_MEDIAN_SHARE * max_seq_length
        sigma = lognormal_sigma(median, max_seq_length, share_over)
        source = f"log-normal(median={median:g}, sigma={sigma:.3f}, {share_over:.0%} above {max_seq_length})"

        def draw(n):
            return np.rint(np.exp(rng.normal(math.log(median), sigma, size=n))).astype(int)

    # real: exactly `rows` examples survive (whole optimizer steps, the same set for every
    # batching); epoch: a data set of `rows` examples loses its over-long ones, as in the notebook.
    kept: list[int] = []
    drawn = 0
    while len(kept) < rows and drawn < 100 * rows:
        for value in np.maximum(draw(rows), MIN_LENGTH):
            drawn += 1
            if value <= max_seq_length:
                kept.append(int(value))
            if (regime == "real" and len(kept) == rows) or (regime == "epoch" and drawn == rows):
                break
        if regime == "epoch":
            break
    if not kept or (regime == "real" and len(kept) < rows):
        raise ValueError(f"too few drawn lengths fit max_seq_length {max_seq_length}")
    return LengthSample(regime, kept, source, drawn, drawn - len(kept))


def synthetic_rows(
    lengths: list[int],
    token_range: tuple[int, int],
    eos_id: int,
    prompt_share: float = 0.5,
    seed: int = 0,
    exclude: tuple[int, ...] = (),
) -> dict[str, list]:
    """Columns ``input_ids``, ``attention_mask``, ``labels`` as ``training.tokenize_pairs`` makes them.

    Each example: random token ids from ``token_range`` (never one of ``exclude``, e.g. the pad
    id), ending in ``eos_id``; the first ``prompt_share`` of it is the prompt (label -100), the
    rest, EOS included, is trained on.
    """
    if not 0 <= prompt_share < 1:
        raise ValueError(f"prompt_share must be in [0, 1), got {prompt_share}")
    low, high = token_range
    allowed = np.setdiff1d(np.arange(low, high), np.asarray(exclude + (eos_id,), dtype=int))
    if allowed.size == 0:
        raise ValueError(f"no token ids left in {token_range} after excluding {exclude} and EOS")
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for n in lengths:
        ids = allowed[rng.integers(0, allowed.size, size=n)].tolist()
        ids[-1] = eos_id
        n_prompt = min(max(1, int(round(prompt_share * n))), n - 1)
        cols["input_ids"].append(ids)
        cols["attention_mask"].append([1] * n)
        cols["labels"].append([IGNORE_INDEX] * n_prompt + ids[n_prompt:])
    return cols
