"""Per-text style statistics, shared by the EDA (human vs LLM columns) and the evaluation
(model output vs human reference), so both measure "style" the same way.

Structure (paragraphs, blank lines, markdown) is read from the raw text. Everything about
sentences and words is read from the prose: heading lines dropped and list bullets and bold
markers stripped, so a "## Conclusion" heading does not count as a two-word sentence.

Readability is the Flesch reading ease formula as textstat computes it (206.835 - 1.015 words per
sentence - 84.6 syllables per word), with syllables from pyphen's hyphenation dictionary, which is
textstat's own fallback. textstat >= 0.7.4 would first fetch NLTK's CMU dictionary over the
network; with no network (CI, a Kaggle kernel with internet off) it fails, and with it the number
would depend on the machine. Pyphen ships with textstat, so the score is the same everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

import numpy as np
import pandas as pd

STYLE_COLUMNS = [
    "blank_line_paragraphs",
    "markdown",
    "paragraphs",
    "sentence_len_mean",
    "sentence_len_std",
    "type_token_ratio",
    "contractions_per_100w",
    "llm_words_per_100w",
    "readability",
]

# Words over-represented in LLM writing (cf. Kobak et al. 2024, "Delving into ChatGPT usage in
# academic writing through excess vocabulary"); inflections (delves, fostering...) match too.
LLM_WORDS = (
    "additionally", "bustling", "captivating", "comprehensive", "crucial", "delve", "elevate",
    "embark", "embrace", "endeavor", "enduring", "essential", "foster", "furthermore", "harness",
    "holistic", "interplay", "intricate", "invaluable", "landscape", "leverage", "meticulous",
    "moreover", "multifaceted", "navigate", "notably", "nuanced", "paramount", "pivotal",
    "profound", "realm", "resonate", "robust", "seamless", "showcase", "tapestry", "testament",
    "transformative", "ultimately", "underscore", "unlock", "vibrant",
)

# 's is a contraction only after these (it's, that's, let's); after a name it is a possessive.
_S_CONTRACTION_BASES = frozenset(
    "it that there here what who where when why how let he she everyone everybody someone "
    "somebody nobody nothing something everything".split()
)

HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.M)
BOLD = re.compile(r"(\*\*|__)(?=\S)[^\n]+?(?<=\S)\1")
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S", re.M)
_BLANK_LINE_BETWEEN = re.compile(r"\S[ \t]*\n[ \t]*\n\s*\S")
_HEADING_LINE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+.*$", re.M)
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")
_CONTRACTION_END = re.compile(r"(?:n't|'re|'ll|'ve|'d|'m)$")


def _inflections(word: str) -> set[str]:
    forms = {word, word + "s", word + "es", word + "d", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms.add(word[:-1] + "ing")
    if word.endswith("y"):
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    return forms


_LLM_WORD_FORMS = frozenset(form for w in LLM_WORDS for form in _inflections(w))


def markdown_kinds(text: str) -> dict[str, bool]:
    """Which markdown markup the text uses: headings, bold, lists."""
    return {
        "headings": bool(HEADING.search(text)),
        "bold": bool(BOLD.search(text)),
        "lists": bool(LIST_ITEM.search(text)),
    }


def prose(text: str) -> str:
    """The text with heading lines dropped and list bullets / bold markers stripped."""
    text = text.replace("\u2019", "'")
    text = _HEADING_LINE.sub("", text)
    text = _BULLET.sub("", text)
    return text.replace("**", "").replace("__", "")


def words(text: str) -> list[str]:
    """Word tokens; a contraction ("didn't") is one word, a hyphenated word is two."""
    return WORD.findall(text.replace("\u2019", "'"))


def sentences(text: str) -> list[list[str]]:
    """The prose's sentences as word lists (split after . ! ? and at line breaks)."""
    return [w for w in (words(s) for s in _SENTENCE_END.split(prose(text))) if w]


def is_contraction(word: str) -> bool:
    """didn't, we'll, I'm... and 's after a pronoun (it's, let's), not after a name (John's)."""
    w = word.lower()
    return bool(_CONTRACTION_END.search(w)) or (w.endswith("'s") and w[:-2] in _S_CONTRACTION_BASES)


@lru_cache(maxsize=200_000)
def syllables(word: str) -> int:
    """Syllables in one word: pyphen hyphenation points + 1 (textstat's rule for unknown words)."""
    return len(_pyphen().positions(word.lower())) + 1


@lru_cache(maxsize=1)
def _pyphen():
    import pyphen  # installed with textstat

    return pyphen.Pyphen(lang="en_US")


def flesch_reading_ease(sentence_words: list[list[str]]) -> float:
    """Flesch reading ease of a text given as sentences of words (higher = easier; 60-70 plain English)."""
    tokens = [w for s in sentence_words for w in s]
    if not tokens:
        return 0.0
    per_word = sum(syllables(w) for w in tokens) / len(tokens)
    return 206.835 - 1.015 * len(tokens) / len(sentence_words) - 84.6 * per_word


def style_features(text: str) -> dict[str, float]:
    """The STYLE_COLUMNS of one text.

    ``paragraphs`` counts non-empty lines (a list item is one); ``sentence_len_std`` is the
    population spread of sentence lengths in words ("burstiness"); ``type_token_ratio`` is
    distinct words / words (it falls as a text gets longer, so compare texts of similar length);
    the ``*_per_100w`` columns are per 100 words. A text with no words scores 0 on the word columns.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    sents = sentences(text)
    tokens = [w for s in sents for w in s]
    n = len(tokens)
    lengths = np.array([len(s) for s in sents], dtype=float)
    per_100 = 100.0 / n if n else 0.0
    return {
        "blank_line_paragraphs": float(bool(_BLANK_LINE_BETWEEN.search(text))),
        "markdown": float(any(markdown_kinds(text).values())),
        "paragraphs": float(len(lines)),
        "sentence_len_mean": float(lengths.mean()) if n else 0.0,
        "sentence_len_std": float(lengths.std()) if n else 0.0,
        "type_token_ratio": len({w.lower() for w in tokens}) / n if n else 0.0,
        "contractions_per_100w": sum(map(is_contraction, tokens)) * per_100,
        "llm_words_per_100w": sum(w.lower() in _LLM_WORD_FORMS for w in tokens) * per_100,
        "readability": flesch_reading_ease(sents),
    }


def style_table(texts: Iterable[str]) -> pd.DataFrame:
    """One row of STYLE_COLUMNS per text, in input order."""
    return pd.DataFrame([style_features(t) for t in texts], columns=STYLE_COLUMNS, dtype=float)
