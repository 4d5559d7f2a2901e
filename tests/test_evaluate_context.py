"""Issue 16: one huge row in the validation split must not take the evaluation down (a ~40k-token
prompt allocated 6.4 GB). Rows whose prompt leaves no room for max_new_tokens are left out, and
the report says how many."""

from __future__ import annotations

import pandas as pd
import pytest

from ai2human.errors import DataError
from ai2human.evaluate.context import keep_fitting_rows


def _rows(n):
    return pd.DataFrame({"ai": [f"text {i}" for i in range(n)], "human": [f"human {i}" for i in range(n)]})


def test_rows_too_long_for_the_context_are_left_out_and_counted():
    rows, prompts = _rows(4), ["p0", "p1", "p2", "p3"]
    kept, kept_prompts, note = keep_fitting_rows(rows, prompts, [100, 40_000, 448, 449], max_seq_length=512, max_new_tokens=64)
    assert kept["ai"].tolist() == ["text 0", "text 2"] and kept_prompts == ["p0", "p2"]
    assert note == ("left out 2 of 4 rows whose prompt is longer than max_seq_length - max_new_tokens (448 tokens); "
                    "2 rows are evaluated")


def test_when_every_row_fits_nothing_changes_and_nothing_is_said():
    rows = _rows(2)
    kept, prompts, note = keep_fitting_rows(rows, ["a", "b"], [10, 20], 512, 64)
    assert kept is rows and prompts == ["a", "b"] and note == ""


def test_no_row_fitting_is_a_clear_data_error():
    with pytest.raises(DataError, match="raise max_seq_length or lower max_new_tokens"):
        keep_fitting_rows(_rows(2), ["a", "b"], [500, 600], 512, 64)
