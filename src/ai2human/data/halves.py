"""The training split's two disjoint halves: one for the reward, one for the judge that checks it.

Preference training (``ai2human.prefer``) optimises a reward built from a detector; a detector
trained on the same rows, with the same features, would share its blind spots, so a rise in reward
could be the model learning those blind spots (reward hacking) rather than reading more human. The
reward's detector trains on ``reward`` rows only; the held-out judge (``evaluate.judge``) trains on
``judge`` rows only, with another feature set. Both stages call ``reward_judge_halves`` with the
same split and seed, so the halves agree without a file passing between them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ai2human.errors import DataError


def reward_judge_halves(train: pd.DataFrame, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(reward_rows, judge_rows)``: a seeded shuffle of ``train`` cut in two (the odd row to the
    reward side). Each half keeps the split's columns; neither shares a row with the other."""
    if len(train) < 4:
        raise DataError(f"the training split has {len(train)} rows; the reward and the held-out judge need "
                        "at least 2 each: use more rows or a smaller val_size")
    # A seed of its own, derived from the split's: the halves must not line up with any other shuffle.
    order = np.random.default_rng([seed, 0x4A5D]).permutation(len(train))
    cut = (len(train) + 1) // 2
    shuffled = train.iloc[order]
    return shuffled.iloc[:cut].reset_index(drop=True), shuffled.iloc[cut:].reset_index(drop=True)
