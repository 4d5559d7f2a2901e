"""Load, validate and split the paired dataset (one human text and one AI text per row).

Every notebook reads data through ``load_pairs`` so that the same rows are kept everywhere and
every dropped row is counted, never silently lost.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ai2human.errors import DataError
from ai2human.rundir import SPLIT

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".pq")
MIN_ROWS = 10
# A relative dataset_path that is not found from the working directory is looked up here, so the
# default "data/sample.csv" works from notebooks/ (a notebook opened locally starts there).
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class LoadReport:
    """What ``load_pairs`` kept and dropped, for the notebook's table and ``eda_summary.json``."""

    path: str
    rows_read: int
    dropped_empty: int
    dropped_duplicates: int
    rows_kept: int

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                ("rows read", self.rows_read),
                ("dropped: empty, whitespace-only or missing text", self.dropped_empty),
                ("dropped: exact duplicate pairs", self.dropped_duplicates),
                ("rows kept", self.rows_kept),
            ],
            columns=["", "rows"],
        ).set_index("")


# surrogateescape turns a bad byte b into U+DC00+b, but pandas' CSV and JSON parsers re-encode
# their input as UTF-8 and fail on surrogates without saying where. So each bad byte becomes a
# private-use character instead: parsing succeeds and load_pairs names the row that holds it.
_BAD_BYTE_MARK = 0x10FF00
_MARK_BAD_BYTES = {0xDC00 + b: _BAD_BYTE_MARK + b for b in range(0x80, 0x100)}
_MARKED = re.compile(f"[{chr(_BAD_BYTE_MARK + 0x80)}-{chr(_BAD_BYTE_MARK + 0xFF)}]")


def _decode(raw: bytes) -> tuple[str, bool]:
    """Decode as UTF-8; on failure mark the bad bytes (see above) so the bad row can be named."""
    try:
        return raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="surrogateescape").translate(_MARK_BAD_BYTES), False


def find_dataset(path: str | Path) -> Path:
    """``path`` as given, or for a relative path not found from here, the repository's file of that name."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).is_file():
        return REPO_ROOT / path
    return path


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path), True
        except Exception as exc:  # pyarrow raises several types for corrupt or non-UTF-8 files
            raise DataError(f"{path}: cannot read as Parquet ({exc}); check the file or export it as CSV") from exc
    text, valid = _decode(path.read_bytes())
    if suffix == ".csv":
        text = _strip_comment_header(text)
    try:
        if suffix == ".csv":
            # keep_default_na=False: a text like "NA" or "null" is text, not a missing value.
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        else:
            stripped = text.lstrip()
            lines = suffix == ".jsonl" or not stripped.startswith("[")
            frame = pd.read_json(io.StringIO(text), lines=lines, dtype=False)
    except (ValueError, pd.errors.ParserError) as exc:
        where = _bad_json_line(text) if suffix != ".csv" and not text.lstrip().startswith("[") else ""
        hint = _delimiter_hint(text) if suffix == ".csv" else ""
        detail = where or str(exc).splitlines()[0]
        raise DataError(f"{path}: cannot parse as {suffix[1:].upper()} ({detail}){hint}") from exc
    return frame, valid


def _bad_json_line(text: str) -> str:
    """The first line of a JSONL text that is not JSON, as 'line N: why' (pandas gives a character offset)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                json.loads(line)
            except ValueError as exc:
                return f"line {number} is not valid JSON: {str(exc).split(':')[0]}"
    return ""


def _delimiter_hint(text: str) -> str:
    """'; it looks ';'-separated...' when the header is split by something other than commas."""
    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ""
    if delimiter == ",":
        return ""
    name = {"\t": "tab", ";": "semicolon", "|": "pipe"}[delimiter]
    return f"; the header looks {name}-separated ({header[:80]!r}): save the file as comma-separated CSV"


def _strip_comment_header(text: str) -> str:
    """Drop leading lines that start with '#' (data/sample.csv says it is synthetic this way).

    Only lines before the CSV header are comments: a '#' inside a text (a markdown heading) stays.
    """
    while text.startswith("#"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


def _as_text(value, row: int, column: str, path: Path) -> str:
    """One cell as text; '' for missing. Raises DataError naming the row for non-UTF-8 bytes."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: row {row}, column '{column}' is not valid UTF-8; re-save the file as UTF-8") from None
    if not isinstance(value, str):
        # A number, date, flag or list in a text column is a wrong column or a broken export;
        # str() would train on "1.0" or "['a']" without a word.
        raise DataError(
            f"{path}: row {row}, column '{column}' holds a {type(value).__name__} ({str(value)[:40]!r}), not text; "
            "check human_column / ai_column or export the texts as strings"
        )
    text = value
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{path}: row {row}, column '{column}' is not valid UTF-8; re-save the file as UTF-8") from None
    return text


def load_pairs(
    path: str | Path,
    human_column: str = "human",
    ai_column: str = "LLM",
    min_rows: int = MIN_ROWS,
) -> tuple[pd.DataFrame, LoadReport]:
    """Read a CSV/JSONL/Parquet file of pairs and return ``(pairs, report)``.

    ``pairs`` has columns ``human``, ``ai`` and ``row`` (the 1-based row number in the file) with a
    fresh index. Rows with an empty, whitespace-only or missing text in either column are dropped
    and counted, then exact duplicate pairs; fewer than ``min_rows`` usable rows is an error.
    """
    path = find_dataset(path)
    if not path.is_file():
        raise DataError(f"dataset_path {str(path)!r} does not exist or is not a file; give the path to a CSV, JSONL or Parquet file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    frame, valid_utf8 = _read_table(path)
    missing = [c for c in (human_column, ai_column) if c not in frame.columns]
    if missing:
        present = ", ".join(map(str, frame.columns)) or "none"
        hint = _delimiter_hint(path.read_text(encoding="utf-8", errors="replace")[:4096].lstrip("#")) if path.suffix.lower() == ".csv" else ""
        raise DataError(
            f"{path}: column(s) {', '.join(repr(c) for c in missing)} not found; columns present: {present}. "
            f"Set human_column / ai_column to the right names (runner: --set human_column=... ai_column=...){hint}"
        )
    if frame.empty:
        raise DataError(f"{path}: has the columns but no rows; at least {min_rows} pairs are needed")
    for column in (human_column, ai_column):
        dtype = frame[column].dtype
        if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)) or pd.api.types.is_bool_dtype(dtype):
            raise DataError(f"{path}: column '{column}' holds {dtype} values, not text; check human_column / ai_column "
                            "or export the texts as strings")
    human = [_as_text(v, i + 1, human_column, path) for i, v in enumerate(frame[human_column].tolist())]
    ai = [_as_text(v, i + 1, ai_column, path) for i, v in enumerate(frame[ai_column].tolist())]
    if not valid_utf8:
        for i, (h, a) in enumerate(zip(human, ai)):
            for column, text in ((human_column, h), (ai_column, a)):
                if _MARKED.search(text):
                    raise DataError(f"{path}: row {i + 1}, column '{column}' is not valid UTF-8; re-save the file as UTF-8")
    pairs = pd.DataFrame({"human": human, "ai": ai, "row": np.arange(1, len(frame) + 1)})
    rows_read = len(pairs)
    usable = pairs["human"].str.strip().ne("") & pairs["ai"].str.strip().ne("")
    pairs = pairs[usable]
    dropped_empty = rows_read - len(pairs)
    before = len(pairs)
    pairs = pairs.drop_duplicates(subset=["human", "ai"], keep="first").reset_index(drop=True)
    report = LoadReport(str(path), rows_read, dropped_empty, before - len(pairs), len(pairs))
    if len(pairs) < min_rows:
        raise DataError(
            f"{path}: only {len(pairs)} usable rows (of {rows_read} read; {dropped_empty} empty, "
            f"{report.dropped_duplicates} duplicates); at least {min_rows} are needed"
        )
    return pairs, report


def split_pairs(pairs: pd.DataFrame, val_size: float = 0.2, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle with ``seed`` and hold out ``val_size`` of the rows (the reference run: 0.2, seed 42).

    Fine-tuning and evaluation both call this with the same arguments, so the evaluation never
    scores a text the model was trained on.
    """
    if not 0 <= val_size < 1:
        raise DataError(f"val_size must be in [0, 1), got {val_size}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = int(round(len(pairs) * val_size))
    if val_size > 0:
        n_val = min(max(n_val, 1), len(pairs) - 1)
    shuffled = pairs.iloc[order].reset_index(drop=True)
    return shuffled.iloc[n_val:].reset_index(drop=True), shuffled.iloc[:n_val].reset_index(drop=True)


def split_record(train: pd.DataFrame, val: pd.DataFrame) -> dict:
    """The split's file row numbers and a hash of its texts (a shuffled file keeps the row numbers
    but moves texts between the splits)."""
    digest = hashlib.sha256()
    for name, part in (("train", train), ("validation", val)):
        digest.update(name.encode())
        for human, ai in zip(part["human"], part["ai"]):
            digest.update(hashlib.sha256(f"{human}\0{ai}".encode()).digest())
    rows = {"train": [int(r) for r in train["row"]], "validation": [int(r) for r in val["row"]]}
    return {"sha256": digest.hexdigest(), "rows": rows}


def check_split(run_dir: str | Path, train: pd.DataFrame, val: pd.DataFrame) -> None:
    """Record the split in ``run_dir/split.json``, or refuse one that differs from the recorded one:
    evaluation would then score rows the model was trained on."""
    path = Path(run_dir) / SPLIT
    record = split_record(train, val)
    if not path.is_file():
        save_json(record, path)
    elif json.loads(path.read_text(encoding="utf-8")).get("sha256") != record["sha256"]:
        raise DataError(f"the dataset or its split changed since this run's split was recorded ({path}); "
                        "start a new run folder (another run_dir / run_name, or the runner's --fresh)")


def take(pairs: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The first ``limit`` rows (0 = all): for max_train_samples / max_eval_samples / eval_samples."""
    return pairs if limit <= 0 else pairs.head(limit).reset_index(drop=True)


def save_json(obj, path: str | Path) -> Path:
    """Write a JSON artifact atomically (a half-written file would poison the next notebook)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
