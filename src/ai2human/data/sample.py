"""A deterministic synthetic stand-in for the private human/LLM dataset.

The real set (student essays and Reddit WritingPrompts stories, each answered by a human and by an
LLM) cannot be shipped. This generator mimics the structure the EDA measures, so every notebook has
something real to chew on:

- LLM texts: a blank line between paragraphs, sometimes markdown headings, bold and lists, even
  sentence lengths and a stock of LLM-typical words ("delve", "tapestry", "new", "crucial").
- Human texts: single newlines between paragraphs, contractions, uneven sentence lengths, plain
  words ("said", "will", "one"), the odd typo-free but rambling aside.

Lengths are log-normal with a long tail, as in the real set. Nothing here is real writing.

    python -m ai2human.data.sample --rows 300 --out data/sample.csv

The CSV is plain (a header row, then one pair per row) so ``pd.read_csv`` reads it as is; that it
is synthetic is said in ``data/README.md`` beside it, not in the file.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from pathlib import Path

TOPICS = [
    ("phones in schools", "essay"), ("a four-day school week", "essay"), ("community service", "essay"),
    ("online classes", "essay"), ("driverless cars", "essay"), ("the electoral college", "essay"),
    ("exploring Venus", "essay"), ("facial recognition in classrooms", "essay"), ("summer projects", "essay"),
    ("extracurricular activities", "essay"), ("seeking advice from many people", "essay"),
    ("a lighthouse keeper who finds a door", "story"), ("the last library on Mars", "story"),
    ("a dragon who is afraid of heights", "story"), ("a time traveler stuck on a Tuesday", "story"),
    ("a detective who can hear lies", "story"), ("the town where it never stops snowing", "story"),
    ("an AI that wants to retire", "story"), ("a letter found in a wall", "story"),
]
NAMES = ["Maria", "Tom", "Aiko", "Daniel", "Priya", "Sam", "Elena", "Marcus", "Jade", "Oliver", "Nadia", "Leo"]
PLACES = ["Ohio", "Lisbon", "the old mill", "Denver", "the harbor", "Kyoto", "the valley", "Room 204"]

LLM_OPENERS = [
    "In today's rapidly evolving world, {t} has become a crucial topic of discussion.",
    "The question of {t} invites us to delve into a rich tapestry of perspectives.",
    "When we consider {t}, it is essential to navigate a multifaceted landscape.",
    "In the realm of {t}, a new era of possibilities is beginning to unfold.",
]
LLM_SENTENCES = [
    "Furthermore, it fosters a vibrant sense of community and shared purpose.",
    "Moreover, this approach underscores the importance of balance and new ideas.",
    "It is crucial to recognize that every stakeholder plays a pivotal role.",
    "This serves as a testament to the resilience and creativity of individuals.",
    "Additionally, it is important to note that the benefits extend far beyond the classroom.",
    "By embracing innovation, we can unlock new opportunities for growth.",
    "Ultimately, the journey is as meaningful as the destination itself.",
    "This delicate interplay highlights a profound and enduring truth.",
    "{n} felt a new sense of wonder as the world shifted around them.",
    "The air in {p} shimmered with an almost tangible sense of anticipation.",
    "Each moment seemed to weave itself into the intricate tapestry of fate.",
    "It's a reminder that one small step can spark a transformative change.",
    "In essence, the landscape of possibility is vast and ever-changing.",
    "Consequently, we must harness these insights to navigate the challenges ahead.",
]
LLM_CLOSERS = [
    "In conclusion, {t} is a multifaceted issue that demands thoughtful consideration.",
    "Ultimately, {t} reminds us that the future is shaped by the choices we make today.",
    "As the sun set, {n} realized that this was only the beginning of a new chapter.",
]
LLM_HEADINGS = ["## Introduction", "## Key Considerations", "## A New Perspective", "## Conclusion", "### The Journey Begins"]

HUMAN_SENTENCES = [
    "I think {t} is kind of overrated, honestly.",
    "My teacher said we should try it for a year and see what happens.",
    "It's not that simple though.",
    "{n} said she didn't care, but you could tell she did.",
    "We'll probably never know for sure.",
    "One time in {p} the whole thing fell apart and nobody knew what to do, so we just sat there for like an hour.",
    "That's what I'd do anyway.",
    "People will say it's a waste of time and maybe they're right.",
    "He looked at the door. Then at me.",
    "I don't know.",
    "You can't just make everyone do the same thing and expect it to work, because kids aren't all the same and some of them have jobs or have to watch their little brothers after school.",
    "It was cold. Really cold.",
    "{n} said it would work out, and it sort of did.",
    "Anyway, that's one reason.",
    "There's a lot of stuff to think about with this one.",
    "If I'm being honest I didn't want to go.",
    "The old man laughed and said nothing.",
    "So yeah.",
]


def _lognormal_count(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(round(math.exp(rng.gauss(math.log(median), sigma))))))


def _fill(template: str, rng: random.Random, topic: str) -> str:
    return template.format(t=topic, n=rng.choice(NAMES), p=rng.choice(PLACES))


def make_llm_text(rng: random.Random, topic: str, kind: str, paragraphs: int) -> str:
    """An LLM-style text: blank lines between paragraphs, markdown now and then, even sentences."""
    parts = []
    use_markdown = rng.random() < 0.35
    for i in range(paragraphs):
        if use_markdown and (i == 0 or rng.random() < 0.3):
            parts.append(rng.choice(LLM_HEADINGS))
        sentences = [_fill(rng.choice(LLM_OPENERS), rng, topic)] if i == 0 else []
        sentences += [_fill(s, rng, topic) for s in rng.sample(LLM_SENTENCES, rng.randint(3, 4))]
        if i == paragraphs - 1:
            sentences.append(_fill(rng.choice(LLM_CLOSERS), rng, topic))
        text = " ".join(sentences)
        if use_markdown and rng.random() < 0.4:
            words = text.split(" ")
            k = rng.randrange(0, max(1, len(words) - 3))
            words[k] = f"**{words[k]}"
            words[k + 2] = f"{words[k + 2]}**"
            text = " ".join(words)
        parts.append(text)
        if use_markdown and rng.random() < 0.2:
            parts.append("\n".join(f"- **{w}**: {_fill(rng.choice(LLM_SENTENCES), rng, topic)}" for w in ("Growth", "Balance")))
    return "\n\n".join(parts)


def make_human_text(rng: random.Random, topic: str, kind: str, paragraphs: int) -> str:
    """A human-style text: single newlines, contractions, uneven sentence lengths."""
    parts = []
    for _ in range(paragraphs):
        n = rng.choice([1, 2, 3, 5, 7])
        parts.append(" ".join(_fill(s, rng, topic) for s in rng.sample(HUMAN_SENTENCES, n)))
    return "\n".join(parts)


def generate_pairs(rows: int, seed: int = 0) -> list[dict]:
    """``rows`` synthetic pairs; the same ``(rows, seed)`` always gives the same texts."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(rows):
        topic, kind = rng.choice(TOPICS)
        paragraphs = _lognormal_count(rng, median=4, sigma=0.55, lo=1, hi=30)
        pairs.append(
            {
                "human": make_human_text(rng, topic, kind, max(1, paragraphs + rng.randint(-1, 2))),
                "LLM": make_llm_text(rng, topic, kind, paragraphs),
            }
        )
    return pairs


def write_csv(pairs: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["human", "LLM"])
        writer.writeheader()
        writer.writerows(pairs)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic human/LLM pairs CSV (not real data).")
    parser.add_argument("--rows", type=int, default=300, help="number of pairs (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output CSV path")
    args = parser.parse_args(argv)
    if args.rows < 1:
        print("error: --rows must be at least 1", file=sys.stderr)
        return 2
    write_csv(generate_pairs(args.rows, args.seed), args.out)
    print(f"wrote {args.rows} synthetic pairs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
