"""The pairs file (``rundir.PAIRS``, Parquet): what fine-tuning trains on when ``pairs_source`` is not dataset.

Columns: ``human`` (the target), ``ai`` (the input), ``row`` (the dataset row the human text comes
from) and ``source`` (``dataset``: the row's own AI text; ``reverse``: the restyled human text).
The split is by original row, the same ``split_pairs`` split every notebook uses: the file holds
training rows only, and readers drop any row of the validation split, so no validation human text
is trained on in either form.

``reverse`` replaces a training row's dataset pair by its restyled pair where the restyled text
passed every filter (the other rows keep their dataset pair, so no training row is lost); ``both``
keeps every dataset pair and adds the restyled ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ai2human.errors import DataError
from ai2human.rundir import PAIRS

PAIRS_SOURCES = ("dataset", "reverse", "both")
COLUMNS = ["human", "ai", "row", "source"]


def build_pairs(train: pd.DataFrame, styled: pd.DataFrame, pairs_source: str) -> pd.DataFrame:
    """The training pairs for ``pairs_source`` from the training split (``human``, ``ai``, ``row``)
    and the kept restyled texts (``styled``: columns ``row`` and ``ai``, one per kept row)."""
    if pairs_source not in PAIRS_SOURCES:
        raise DataError(f"pairs_source must be one of {', '.join(PAIRS_SOURCES)}, got {pairs_source!r}")
    dataset = train[["human", "ai", "row"]].assign(source="dataset")
    if pairs_source == "dataset":
        return dataset[COLUMNS].reset_index(drop=True)
    unknown = set(styled["row"]) - set(train["row"])
    if unknown:
        raise DataError(f"restyled rows {sorted(unknown)[:5]} are not training rows; the split changed")
    human = train.set_index("row")["human"]
    reverse = pd.DataFrame({"human": styled["row"].map(human), "ai": styled["ai"], "row": styled["row"], "source": "reverse"})
    if pairs_source == "reverse":
        dataset = dataset[~dataset["row"].isin(reverse["row"])]
    # Each row's pairs side by side (dataset first), in the training split's order.
    order = {row: i for i, row in enumerate(train["row"])}
    out = pd.concat([dataset, reverse], ignore_index=True)
    out = out.assign(_o=out["row"].map(order), _s=(out["source"] == "reverse")).sort_values(["_o", "_s"], kind="stable")
    return out[COLUMNS].reset_index(drop=True)


def kept_restyled(rows: pd.DataFrame, restyled: list[str], judged: pd.DataFrame) -> pd.DataFrame:
    """``row`` and ``ai`` of the restyled texts that passed every filter (``filters.judge_styled``)."""
    kept = judged["kept"].to_numpy(bool)
    return pd.DataFrame({"row": rows["row"].to_numpy()[kept], "ai": [t for t, k in zip(restyled, kept) if k]})


def write_pairs(pairs: pd.DataFrame, run_dir: str | Path) -> Path:
    """Write the pairs atomically: a half-written file would train on part of the data."""
    path = Path(run_dir) / PAIRS
    tmp = path.with_name(path.name + ".tmp")
    pairs[COLUMNS].to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_pairs(run_dir: str | Path) -> pd.DataFrame:
    """The run's pairs file; DataError naming what to do when it is missing or malformed."""
    path = Path(run_dir) / PAIRS
    if not path.is_file():
        raise DataError(f"{path} is missing: run the pairs notebook first (01b_pairs), or set pairs_source to dataset")
    try:
        pairs = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a cut-off file
        raise DataError(f"{path} is unreadable ({type(exc).__name__}); run the pairs notebook again") from None
    missing = [c for c in COLUMNS if c not in pairs]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}; run the pairs notebook again")
    return pairs


def training_pairs(run_dir: str | Path, pairs_source: str, train: pd.DataFrame, val: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``(pairs to train on, a line saying what they are)``. ``dataset``: the training split as it
    is. Otherwise the pairs file, keeping only rows of this training split: a row of the
    validation split (or of no split: another dataset) is never trained on, in either form."""
    if pairs_source == "dataset":
        return train, f"pairs_source dataset: the dataset's {len(train)} training pairs"
    pairs = read_pairs(run_dir)
    allowed = set(train["row"]) - set(val["row"])
    inside = pairs["row"].isin(allowed) & ~pairs["human"].isin(set(val["human"]))
    note = ""
    if not inside.all():
        note = f"; {int((~inside).sum())} pairs left out: not of this training split, or a validation human text"
    pairs = pairs[inside].reset_index(drop=True)
    if pairs.empty:
        raise DataError(f"{Path(run_dir) / PAIRS} holds no pair of this training split; run the pairs notebook again")
    counts = pairs["source"].value_counts()
    return pairs, (f"pairs_source {pairs_source}: {len(pairs)} pairs from {PAIRS} ({int(counts.get('reverse', 0))} reverse, "
                   f"{int(counts.get('dataset', 0))} dataset) over {pairs['row'].nunique()} training rows{note}")


def validation_leaks(pairs: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
    """Pairs whose row, or whose human text, belongs to the validation split (should be none)."""
    return pairs[pairs["row"].isin(set(val["row"])) | pairs["human"].isin(set(val["human"]))]


def pairs_note(run_dir: str | Path, val: pd.DataFrame) -> str:
    """For the evaluation: what this run's fine-tuning trained on, checked against the validation
    split (DataError if a validation row or human text is in the pairs file)."""
    if not (Path(run_dir) / PAIRS).is_file():
        return "training pairs: the dataset's (no pairs file in this run)"
    pairs = read_pairs(run_dir)
    leaks = validation_leaks(pairs, val)
    if not leaks.empty:
        raise DataError(f"{Path(run_dir) / PAIRS} holds {len(leaks)} pairs of the validation split (rows "
                        f"{sorted(set(leaks['row']))[:5]}); the scores would include trained-on texts: run the pairs notebook again")
    counts = pairs["source"].value_counts()
    return (f"training pairs: {PAIRS}, {int(counts.get('reverse', 0))} reverse and {int(counts.get('dataset', 0))} dataset "
            f"pairs over {pairs['row'].nunique()} training rows; none of the validation split")
