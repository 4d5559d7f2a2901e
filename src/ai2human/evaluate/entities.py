"""Details a rewrite invents: numbers, dates, capitalised names and quotations its input lacks.

A cheap hallucination check (rewording is allowed, new facts are not): ``added_entities(source,
output)`` lists what ``output`` states that ``source`` does not support.
"""

from __future__ import annotations

import re
from functools import lru_cache

ENTITY_KINDS = ("numbers", "dates", "names", "quotes")

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "half": 2, "dozen": 12, "once": 1, "twice": 2}

_FULL_MONTH = r"(?:January|February|March|April|June|July|August|September|October|November|December)"
_ANY_MONTH = r"(?:" + _FULL_MONTH[3:-1] + r"|May|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
DATE_PATTERN = re.compile(
    r"\b(?:"
    rf"\d{{4}}-\d{{1,2}}-\d{{1,2}}"  # 2021-05-12
    rf"|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}"  # 12/05/2021
    rf"|{_ANY_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"  # May 12, 2021 / Jan. 3
    rf"|{_DAY}\s+(?:of\s+)?{_ANY_MONTH}(?:,?\s+{_YEAR})?"  # 12 May 2021 / 3rd of March
    rf"|{_ANY_MONTH},?\s+{_YEAR}"  # May 2021
    rf"|{_FULL_MONTH}"  # a month alone ("May" alone is usually the verb)
    r"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
    rf"|{_YEAR}s?"  # a year or a decade: 1999, 1990s
    r")\b"
)
NUMBER_PATTERN = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# Where a capital letter says nothing: the text's start, after . ! ? : or a line break, after a
# markdown bullet, heading or quote mark.
_SENTENCE_START = re.compile(
    r"(?:(?:^|\n)\s*(?:[-*+>#]+\s*|\d+[.)]\s*)?|[.!?:;…]['\"”’)\]*_]*\s+|[\"“‘(\[*_]\s*|[-–—]\s+)$"
)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """English words that start sentences without being names: stop words, the Dale-Chall easy
    words textstat ships, and discourse openers LLMs and people favour."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = set(ENGLISH_STOP_WORDS) | set(MONTHS) | set(WEEKDAYS) | set(NUMBER_WORDS)
    words |= set("""moreover furthermore additionally consequently ultimately overall however therefore thus hence
        indeed instead meanwhile nonetheless nevertheless notably importantly interestingly honestly basically
        anyway anyways maybe perhaps sure yes yeah yep nope okay ok well oh plus still also so sometimes
        lastly finally firstly secondly thirdly essentially generally similarly likewise alternatively
        specifically clearly obviously actually really truly frankly personally hopefully sadly luckily
        embracing navigating fostering exploring understanding imagine consider whether while although""".split())
    try:
        from importlib.resources import files

        easy = files("textstat").joinpath("resources/en/easy_words.txt").read_text(encoding="utf-8")
        words |= {w.strip().lower() for w in easy.split() if w.strip()}
    except Exception:  # textstat moved or dropped its list: the stop words still cover the usual openers
        pass
    return frozenset(words)


def _stems(word: str) -> set[str]:
    """The word and its likely base forms ("Students" -> student, "Looking" -> look, "Making" -> make).

    Deliberately narrow ("James" must not become "jam"): only plural, -ed, -ing and -ly endings.
    """
    w = re.sub(r"['’]s$", "", word.lower())
    stems = {w}
    if w.endswith("ies") and len(w) > 4:
        stems.add(w[:-3] + "y")
    elif re.search(r"(?:ch|sh|ss|x|z)es$", w):
        stems.add(w[:-2])
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        stems.add(w[:-1])
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            stem = w[: -len(suffix)]
            stems |= {stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem}  # made->make, stopped->stop
    if w.endswith("ily") and len(w) > 5:
        stems.add(w[:-3] + "y")
    elif w.endswith("ly") and len(w) > 4:
        stems.add(w[:-2])
    return stems


def _number_value(token: str) -> str:
    """Canonical form of a numeric token: "1,000" -> "1000", "3rd" -> "3", "2.50" -> "2.5"."""
    t = re.sub(r"(?:st|nd|rd|th)$", "", token)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "")
    t = t.replace(",", ".")
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return t.lstrip("0") or "0"


def _date_parts(date: str) -> set[str]:
    """A date as a set of comparable parts: month numbers as "m3", weekdays by name, numbers canonical."""
    parts = set()
    for word in re.findall(r"[A-Za-z]+", date):
        w = word.lower()
        if w in WEEKDAYS:
            parts.add(w)
        elif w in MONTHS:
            parts.add(f"m{MONTHS.index(w) + 1}")
        elif w[:4] in _MONTH_ABBR or w[:3] in _MONTH_ABBR:
            parts.add(f"m{_MONTH_ABBR.get(w[:4], _MONTH_ABBR.get(w[:3]))}")
    parts |= {_number_value(n) for n in re.findall(r"\d+", date)}
    return parts


def _source_support(source: str) -> tuple[set[str], set[str], set[str]]:
    """What the source supports: canonical numbers, date parts, and casefolded words."""
    numbers = {_number_value(n) for n in NUMBER_PATTERN.findall(source)}
    lower_words = [w.lower() for w in _WORD.findall(source)]
    numbers |= {str(NUMBER_WORDS[w]) for w in lower_words if w in NUMBER_WORDS}
    dates = set(numbers)
    for date in DATE_PATTERN.findall(source):
        dates |= _date_parts(date)
    for w in lower_words:
        dates |= _date_parts(w) if (w in MONTHS or w in WEEKDAYS or w in _MONTH_ABBR) else set()
    words = {w for lw in lower_words for w in _stems(lw)} | set(lower_words)
    return numbers, dates, words


_TITLES = frozenset({"Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Sr", "Jr"})


def _capitalised_runs(text: str) -> list[tuple[list[str], bool]]:
    """Runs of adjacent capitalised words ("New York"), each with whether it starts a sentence."""
    runs: list[tuple[list[str], bool]] = []
    previous_end = None
    for match in _WORD.finditer(text):
        word = re.sub(r"['’]s$", "", match.group())
        if not word[0].isupper():
            previous_end = None
            continue
        gap = text[previous_end : match.start()] if previous_end is not None else None
        if gap == " " or (gap == ". " and runs[-1][0][-1] in _TITLES):  # "New York", "Mr. Johnson"
            runs[-1][0].append(word)
        else:
            runs.append(([word], bool(_SENTENCE_START.search(text[: match.start()]))))
        previous_end = match.end()
    return runs


def added_entities(source: str, output: str) -> dict[str, list[str]]:
    """Numbers, dates, capitalised names and quotations in ``output`` that ``source`` does not support.

    Rewording is not flagged: a number is supported when the source has it as digits or as a word
    ("three" supports "3"), a date when the source has all of its parts in any order, a name when
    the source has each of its words in any case. A capitalised word at the start of a sentence is
    only a name when it is not a common English word and never appears in lower case in either text.
    """
    source, output = str(source), str(output)
    numbers_ok, dates_ok, words_ok = _source_support(source)
    lowercase_seen = {w for w in _WORD.findall(source + " " + output) if w[0].islower()}

    dates, masked = [], output
    for match in DATE_PATTERN.finditer(output):
        if not _date_parts(match.group()) <= dates_ok:
            dates.append(match.group())
        masked = masked.replace(match.group(), " " * len(match.group()), 1)

    numbers = [n for n in NUMBER_PATTERN.findall(masked) if _number_value(n) not in numbers_ok]

    names = []
    for words, starts_sentence in _capitalised_runs(masked):
        if starts_sentence:
            first = words[0]
            if first.lower() in lowercase_seen or _stems(first) & common_words():
                words = words[1:]
        words = [w for w in words if w != "I" and not w.startswith(("I'", "I’"))]
        if words and not all(w.lower() in words_ok for w in words):
            names.append(" ".join(words))
    return {"numbers": _unique(numbers), "dates": _unique(dates), "names": _unique(names),
            "quotes": added_quotes(source, output)}


# A quotation is words between double quotes; fewer than QUOTE_MIN_WORDS is a scare quote ("cool"),
# a choice of wording rather than a claim that someone said something.
QUOTE_PATTERN = re.compile(r'"([^"\n]{1,400})"|“([^”\n]{1,400})”')
QUOTE_MIN_WORDS = 3


def _word_seq(text: str) -> str:
    return " " + " ".join(w.lower() for w in _WORD.findall(text)) + " "


def added_quotes(source: str, output: str) -> list[str]:
    """Quotations in ``output`` whose words (any case, any punctuation) are not a run of ``source``'s
    words: a quote the input never had is a made-up attribution, the worst kind of invention."""
    source_words = _word_seq(str(source))
    quotes = []
    for match in QUOTE_PATTERN.finditer(str(output)):
        quote = (match.group(1) or match.group(2) or "").strip()
        words = _word_seq(quote)
        if len(words.split()) >= QUOTE_MIN_WORDS and words not in source_words:
            quotes.append(quote)
    return _unique(quotes)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


