"""Which evaluated rows fit the model's context: a prompt must leave room for ``max_new_tokens``.

A prompt that does not would be cut mid-text, or (one 200 KB row: a ~40k-token prompt) exhaust the
GPU's memory and take the whole evaluation down; such rows are left out and the report says how many.
"""

from __future__ import annotations

import pandas as pd

from ai2human.errors import DataError


def keep_fitting_rows(evaluation: pd.DataFrame, prompts: list[str], prompt_tokens: list[int],
                      max_seq_length: int, max_new_tokens: int) -> tuple[pd.DataFrame, list[str], str]:
    """``(rows, their prompts, a note)`` for the rows whose prompt plus ``max_new_tokens`` fits
    ``max_seq_length``; the note is "" when every row fits. None fitting is a ``DataError``."""
    room = max_seq_length - max_new_tokens
    fits = [n <= room for n in prompt_tokens]
    if not any(fits):
        raise DataError(f"no evaluated row's prompt fits max_seq_length - max_new_tokens = {room} tokens; "
                        "raise max_seq_length or lower max_new_tokens")
    if all(fits):
        return evaluation, prompts, ""
    kept = evaluation[fits]
    note = (f"left out {fits.count(False)} of {len(fits)} rows whose prompt is longer than max_seq_length - "
            f"max_new_tokens ({room} tokens); {len(kept)} rows are evaluated")
    return kept, [p for p, ok in zip(prompts, fits) if ok], note
