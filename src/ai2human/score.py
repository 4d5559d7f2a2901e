"""Score any humanizer's outputs with a run's yardstick: the same verdict the evaluation gives.

    python -m ai2human.score outputs.jsonl --run runs/v5 [--out scores.jsonl]

FILE is JSONL, CSV or Parquet with columns ``source`` (the AI text given to the humanizer) and
``output`` (what it returned), optionally ``system`` (several humanizers in one file). Each row is
judged with the run's saved detectors, fluency model and calibration (``rundir.YARDSTICK``, written
by the evaluation notebook): one summary row per system is printed, and one JSON line per input
row is written with ``system``, ``success``, ``score`` and every component.
A run evaluated with the zero-shot detector also loads its base model (adapter off) to judge.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ai2human.errors import UserError
from ai2human.rundir import MANIFEST, YARDSTICK, Manifest, ManifestError

READERS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
REQUIRED = ("source", "output")
DEFAULT_SYSTEM = "system"
SHARES = {"judged_human": "judged human", "fluent": "fluent", "meaning_kept": "meaning kept",
          "invents_nothing": "invents nothing", "not_empty": "not empty"}


def read_outputs(path: str | Path) -> pd.DataFrame:
    """The rows to score: ``source``, ``output`` and ``system`` as strings; UserError on bad input."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{path}: unknown extension {path.suffix or '(none)'!r}; use .jsonl, .csv or .parquet")
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty; it needs rows with columns {', '.join(REQUIRED)}")
    try:
        if kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif kind == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # pandas raises many types for a malformed file; all mean "cannot read it"
        raise UserError(f"{path} is not readable as {kind} ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks column {' and '.join(missing)} (it has: {', '.join(map(str, frame.columns)) or 'none'})")
    if frame.empty:
        raise UserError(f"{path} has no rows to score")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({c: frame[c].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
                        for c in REQUIRED})
    out["system"] = frame["system"].astype(str) if "system" in frame else DEFAULT_SYSTEM
    return out


def load_run_yardstick(run_dir: str | Path):
    """The run's yardstick, or a UserError saying what to run first."""
    from ai2human.evaluate.yardstick import Yardstick

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run folder at {run_dir}")
    if not (run_dir / YARDSTICK).is_file():
        raise UserError(f"run folder {run_dir} has no evaluation ({YARDSTICK} is missing); "
                        "run the evaluation notebook on it first (python runner/run.py PARAMS --only evaluate)")
    return Yardstick.load(run_dir / YARDSTICK)


def base_model_signals(run_dir: Path):
    """A ``SignalCache`` over the run's base model (for a yardstick with the zero-shot detector)."""
    from ai2human.evaluate.zero_shot import SignalCache
    from ai2human.models.hardware import choose_backend, detect_hardware
    from ai2human.models.loading import load_model

    try:
        manifest = Manifest.load(run_dir)
    except ManifestError as exc:
        raise UserError(str(exc)) from None
    if manifest is None:
        raise UserError(f"{run_dir / MANIFEST} is missing: the base model the yardstick needs is unknown")
    p = manifest.data.get("params", {})
    choice = choose_backend(p.get("backend", "auto"), detect_hardware(), bool(p.get("load_in_4bit", True)), purpose="generate")
    model, tokenizer = load_model(p["model_name"], choice, int(p.get("max_seq_length", 2048)), p.get("tokenizer_name", ""))
    model.eval()
    return SignalCache(model, tokenizer)


def score_frame(rows: pd.DataFrame, yardstick, embedder, signals=None) -> pd.DataFrame:
    """Per-row scores, system by system (a rewrite's nearest neighbour is sought among its system's inputs)."""
    parts = []
    for system, group in rows.groupby("system", sort=False):
        scored = yardstick.score(embedder, group["source"].tolist(), group["output"].tolist(),
                                 signals=None if signals is None else signals(group["output"].tolist()))
        scored.index = group.index
        parts.append(scored.assign(system=system))
    return pd.concat(parts).loc[rows.index]


def system_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per system: rows, success rate, mean score and each component's share."""
    grouped = scores.groupby("system", sort=False)
    table = pd.DataFrame({"rows": grouped.size(), "success rate": grouped["success"].mean(), "mean score": grouped["score"].mean()})
    for column, label in SHARES.items():
        table[label] = grouped[column].mean()
    return table


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in shown.columns:
        if column == "mean score":
            shown[column] = shown[column].map("{:.2f}".format)
        elif column != "rows":
            shown[column] = shown[column].map("{:.0%}".format)
    return shown.reset_index().to_string(index=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ai2human.score",
        description="Score a humanizer's outputs with a run's evaluation yardstick (success, score and every component).",
        epilog="example: python -m ai2human.score outputs.jsonl --run runs/demo --out scores.jsonl")
    parser.add_argument("file", type=Path, help="JSONL, CSV or Parquet with columns source, output and optionally system")
    parser.add_argument("--run", type=Path, required=True, help="an evaluated run folder (runs/<name>) holding " + YARDSTICK)
    parser.add_argument("--out", type=Path, help="where to write one JSON line per row (default: FILE's name + .scores.jsonl)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        yardstick = load_run_yardstick(args.run)
        rows = read_outputs(args.file)
        from ai2human.evaluate.meaning import load_embedder
        from ai2human.evaluate.report import save_jsonl, text_record

        signals = base_model_signals(args.run) if yardstick.zero_shot is not None else None
        scores = score_frame(rows, yardstick, load_embedder(), signals)
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    out = args.out or args.file.with_name(args.file.stem + ".scores.jsonl")
    records = [{"row": int(i), "system": row["system"], **text_record(row)} for i, row in scores.iterrows()]
    save_jsonl(records, out)
    print(format_table(system_table(scores)))
    print(f"wrote {len(records)} rows to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
