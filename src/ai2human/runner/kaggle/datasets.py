"""The run's data: where it lives on Kaggle, staged for ``--upload-data``, and checked before a push.

A wrong column name or an unreadable file must stop a push on this machine (``--dry-run`` too),
not inside a kernel after the GPU stack has installed. No network here.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ai2human import rundir
from ai2human.errors import DataError, ParamsError
from ai2human.runner.kaggle.names import slugify
from ai2human.runner.kaggle.wheel import dataset_metadata
from ai2human.runner.params import REPO_ROOT

KAGGLE_INPUT = str(rundir.KAGGLE_INPUT)  # compared and joined as strings: these paths are Kaggle's, not ours
SAMPLE = REPO_ROOT / "data" / "sample.csv"  # the bundled synthetic pairs

# Licence names Kaggle accepts in dataset-metadata.json (docs/datasets_metadata.md of kaggle-api).
LICENSES = {"CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
            "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0",
            "CC-BY-3.0-IGO", "US-Government-Works", "CC-BY-NC-SA-3.0-IGO", "CDLA-Permissive-1.0",
            "CDLA-Sharing-1.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0", "LGPL-3.0", "AGPL-3.0",
            "FDL-1.3", "EU-ODP-Legal-Notice", "apache-2.0", "GPL-3.0"}


@dataclass
class DataSet:
    ref: str  # owner/slug
    title: str
    local: Path | None  # the file to upload; None when dataset_path is already a Kaggle path
    kaggle_path: str  # what the notebooks read
    license: str

    @property
    def slug(self) -> str:
        return self.ref.split("/", 1)[1]


def plan_dataset(dataset_path: str, meta: dict, username: str) -> DataSet:
    """Where the run's data lives on Kaggle: ``kaggle_dataset`` or ``<you>/ai2human-<file stem>``."""
    license_name = meta.get("kaggle_data_license") or "other"
    ref = meta.get("kaggle_dataset") or ""
    if dataset_path.startswith(KAGGLE_INPUT + "/"):
        if not ref:
            raise ParamsError(f"dataset_path {dataset_path} is a Kaggle path: set kaggle_dataset: OWNER/SLUG to attach it")
        return DataSet(ref, "", None, dataset_path, license_name)
    local = Path(dataset_path)
    if not ref:
        ref = f"{username}/{slugify('ai2human ' + local.stem)[:50].strip('-')}"
    slug = ref.split("/", 1)[-1]
    return DataSet(ref, " ".join(slug.split("-")), local, f"{KAGGLE_INPUT}/{slug}/{local.name}", license_name)


def stage_dataset(data: DataSet, out_root: Path) -> Path:
    """``<runs>/.kaggle-data/<slug>/``: the data file and ``dataset-metadata.json``, ready to upload."""
    folder = out_root / ".kaggle-data" / data.slug
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        os.link(data.local, folder / data.local.name)
    except OSError:  # another file system
        shutil.copy2(data.local, folder / data.local.name)
    meta = dataset_metadata(data.ref, data.title, data.license,
                             f"Paired human/AI texts ({data.local.name}) for ai2human, uploaded by `runner/run.py --upload-data`.")
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------- checking the data


@dataclass
class DataCheck:
    path: str
    rows: int
    empty: int
    duplicates: int
    kept: int
    warning: str = ""

    def describe(self) -> str:
        return (f"{self.path}: {self.rows:,} rows, {self.empty:,} with an empty text, "
                f"{self.duplicates:,} duplicates, {self.kept:,} kept")


def _columns(path: Path) -> list[str] | None:
    """The file's column names, read cheaply; None when it cannot be read at all."""
    import pandas as pd

    try:
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if suffix == ".csv":
            return [str(c) for c in pd.read_csv(path, nrows=0, encoding_errors="replace").columns]
        return [str(c) for c in pd.read_json(path, lines=suffix == ".jsonl", nrows=5 if suffix == ".jsonl" else None).columns]
    except Exception:  # any parse failure: load_pairs's own message says what is wrong
        return None


def _guess(columns: list[str], words: tuple[str, ...], taken: str = "") -> str:
    for column in columns:
        if column != taken and any(w in column.lower() for w in words):
            return column
    return "COLUMN"


def check_data(params: dict) -> DataCheck | None:
    """Load ``dataset_path`` as the notebooks will; DataError naming the fix when they would fail.

    None when there is nothing local to check (no dataset_path, or a /kaggle/input path)."""
    path = str(params.get("dataset_path") or "")
    if not path or path.startswith(KAGGLE_INPUT + "/"):
        return None
    from ai2human.data.pairs import load_pairs

    human, ai = str(params.get("human_column", "human")), str(params.get("ai_column", "LLM"))
    columns = _columns(Path(path)) if Path(path).is_file() else None
    if columns is not None and not {human, ai} <= set(columns):
        guess_human = _guess(columns, ("human", "person", "original"))
        guess_ai = _guess(columns, ("llm", "ai", "gpt", "generated", "machine", "model"), guess_human)
        raise DataError(f"dataset_path {path}: human_column {human!r} and ai_column {ai!r} must both be columns; "
                        f"columns found: {', '.join(columns) or 'none'}. Fix: --set human_column={guess_human} "
                        f"ai_column={guess_ai}")
    try:
        _, report = load_pairs(path, human, ai)
    except DataError as exc:
        raise DataError(str(exc) if "dataset_path" in str(exc) else f"dataset_path: {exc}") from None
    warning = ""
    if Path(path).resolve() == SAMPLE.resolve():
        warning = (f"dataset_path is the bundled synthetic sample ({SAMPLE.relative_to(REPO_ROOT)}): the kernels would "
                   "train on made-up pairs. Give your data with --set dataset_path=/path/to/pairs.csv "
                   "(and --upload-data the first time)")
    return DataCheck(path, report.rows_read, report.dropped_empty, report.dropped_duplicates, report.rows_kept, warning)
