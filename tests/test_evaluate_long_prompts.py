"""Issue 16: one huge row in the validation split must not take the evaluation down (a ~40k-token
prompt allocated 6.4 GB in the preview). Rows whose prompt leaves no room for max_new_tokens are
left out of the evaluation, and the report says how many."""

from __future__ import annotations

import json
import shutil
import sys
import subprocess

from conftest import REPO


def test_rows_too_long_for_the_context_are_left_out_and_counted(demo_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(demo_run, run, ignore=shutil.ignore_patterns("*.ipynb", "*.html", "runner.lock"))
    out = run / "03_evaluate.ipynb"
    # The demo's prompts are ~200-480 tokens with the tiny tokenizer: a 480-token context minus 64
    # new tokens leaves room for most of them, not all.
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(REPO / "notebooks" / "03_evaluate.ipynb"), str(out),
         "-p", "run_dir", str(run), "-p", "dataset_path", str(REPO / "data" / "sample.csv"),
         "-p", "model_name", "local:tiny-qwen2", "-p", "max_seq_length", "480", "-p", "max_new_tokens", "64",
         "-p", "eval_samples", "24", "--no-progress-bar"],
        cwd=run, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import nbformat

    printed = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "rows whose prompt is longer than max_seq_length - max_new_tokens (416 tokens)" in printed
    left_out = int(printed.split("left out ")[1].split(" of ")[0])
    metrics = json.loads((run / "eval_metrics.json").read_text())
    assert 0 < left_out < 24 and metrics["rows"]["evaluated"] == 24 - left_out
