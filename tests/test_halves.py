"""data.halves: the reward and the held-out judge never train on the same row."""

import pandas as pd
import pytest

from ai2human.data.halves import reward_judge_halves
from ai2human.errors import DataError


def frame(n):
    return pd.DataFrame({"row": range(n), "human": [f"h{i}" for i in range(n)], "ai": [f"a{i}" for i in range(n)]})


def test_halves_are_disjoint_cover_the_split_and_repeat_for_a_seed():
    reward, judge = reward_judge_halves(frame(11), seed=42)
    assert set(reward["row"]).isdisjoint(judge["row"])
    assert sorted([*reward["row"], *judge["row"]]) == list(range(11))
    assert (len(reward), len(judge)) == (6, 5)
    again, _ = reward_judge_halves(frame(11), seed=42)
    assert list(again["row"]) == list(reward["row"])
    other, _ = reward_judge_halves(frame(11), seed=7)
    assert list(other["row"]) != list(reward["row"])


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(DataError, match="at least 2 each"):
        reward_judge_halves(frame(3))
