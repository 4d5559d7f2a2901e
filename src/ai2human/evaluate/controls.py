"""Controls: texts whose right verdict is known, scored in every evaluation to prove the yardstick.

Built from the evaluated validation rows. Positive controls must succeed: a human text as input
and as output, and a human text with one small edit. Negative controls must fail: the AI text
unchanged, random gibberish, the human text with its words shuffled, one sentence repeated,
another row's human text, an empty string. If a negative control succeeds more than
``NEGATIVE_LIMIT`` of the time, or a positive one less than ``POSITIVE_LIMIT``, the yardstick
cannot be trusted on this data, and the verdict says so.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import pandas as pd

NEGATIVE_LIMIT, POSITIVE_LIMIT = 0.05, 0.90
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class Control:
    name: str
    expect: str  # "succeed" or "fail"
    what: str
    sources: list[str]
    outputs: list[str]


def _one_small_edit(text: str, rng: random.Random) -> str:
    """Drop one lower-case word of four or more letters (never a name, number or quote)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[a-z]{4,}", w)]
    if not candidates:
        return text
    del words[rng.choice(candidates)]
    return " ".join(words)


def _gibberish(text: str, rng: random.Random) -> str:
    n = max(len(text.split()), 5)
    return " ".join("".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 9))) for _ in range(n))


def _shuffled(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def _repeated_sentence(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
    return " ".join([first] * max(3, len(text.split()) // max(len(first.split()), 1)))


def build_controls(rows: pd.DataFrame, seed: int = 0) -> list[Control]:
    """The eight controls for ``rows`` (columns ``human`` and ``ai``), one text per row each."""
    rng = random.Random(seed)
    human, ai = rows["human"].astype(str).tolist(), rows["ai"].astype(str).tolist()
    other = human[1:] + human[:1]  # another row's human text (the next row's)
    return [
        Control("human as is", "succeed", "a human text as input and as output", human, human),
        Control("human, one edit", "succeed", "a human text with one word dropped", human, [_one_small_edit(t, rng) for t in human]),
        Control("AI unchanged", "fail", "the AI input returned as is", ai, ai),
        Control("gibberish", "fail", "random letters, as many words as the input", ai, [_gibberish(t, rng) for t in ai]),
        Control("shuffled words", "fail", "the human text with its words shuffled", human, [_shuffled(t, rng) for t in human]),
        Control("one sentence repeated", "fail", "the human text's first sentence, repeated", human, [_repeated_sentence(t) for t in human]),
        Control("another row's human", "fail", "a fluent human text about something else", ai, other),
        Control("empty", "fail", "an empty string", ai, [""] * len(ai)),
    ]


def control_table(controls: list[Control], scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per control: what it is, what it should do, its success rate and whether it held."""
    rows = []
    for c in controls:
        rate = float(scores[c.name]["success"].mean()) if len(scores[c.name]) else float("nan")
        held = rate >= POSITIVE_LIMIT if c.expect == "succeed" else rate <= NEGATIVE_LIMIT
        rows.append({"control": c.name, "should": c.expect, "success_rate": rate, "held": bool(held),
                     "mean_score": float(scores[c.name]["score"].mean()) if len(scores[c.name]) else float("nan"),
                     "what": c.what})
    return pd.DataFrame(rows).set_index("control")


def trust_problems(table: pd.DataFrame) -> list[str]:
    """Why the yardstick cannot be trusted on this data, in words; empty when every control held."""
    problems = []
    for name, row in table[~table["held"]].iterrows():
        if row["should"] == "succeed":
            problems.append(f"the positive control '{name}' succeeds only {row['success_rate']:.0%} (needs {POSITIVE_LIMIT:.0%})")
        else:
            problems.append(f"the negative control '{name}' succeeds {row['success_rate']:.0%} (at most {NEGATIVE_LIMIT:.0%})")
    return problems


def score_controls(yardstick, embedder, rows: pd.DataFrame, seed: int = 0, signals=None):
    """Build and score every control with ``yardstick``: ``(controls, per-text scores, control_table)``."""
    controls = build_controls(rows, seed)
    scores = {c.name: yardstick.score(embedder, c.sources, c.outputs, signals=None if signals is None else signals(c.outputs))
              for c in controls}
    return controls, scores, control_table(controls, scores)
