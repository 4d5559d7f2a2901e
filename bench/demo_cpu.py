#!/usr/bin/env python3
"""CPU benchmarks of the README's targets, written down rather than asserted by timed tests.

1. The whole demo (`runner/run.py params/demo.yaml`): wall time including kernel start-ups, and
   peak memory of the whole process tree (runner + kernel), sampled every 0.1 s.
   Targets: <= 240 s, <= 3 GB.
2. The EDA notebook on a 3000-row generated set: the sum of its cells' durations (kernel start-up
   excluded), as papermill records them. Target: <= 30 s.

    .venv/bin/python bench/demo_cpu.py        # writes bench/results/<date>-cpu-demo.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RUNNER = [sys.executable, str(REPO / "runner" / "run.py")]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_measured(args: list[str]) -> dict:
    """Run a command; return wall seconds, peak process-tree RSS and the exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss(watched))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    return {"exit_code": code, "wall_s": round(time.perf_counter() - t0, 1), "peak_tree_rss_gib": round(peak / 2**30, 2)}


def cell_seconds(notebook: Path) -> float:
    nb = json.loads(notebook.read_text())
    return round(sum((c["metadata"].get("papermill", {}).get("duration") or 0) for c in nb["cells"]), 1)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs"
        demo = run_measured([*RUNNER, "params/demo.yaml", "--out", str(out)])
        manifest = json.loads((out / "demo" / "manifest.json").read_text())
        demo["notebooks_wall_s"] = {k: v.get("wall_s") for k, v in manifest["notebooks"].items()}
        demo["notebooks_cells_s"] = {k: cell_seconds(out / "demo" / v["file"]) for k, v in manifest["notebooks"].items()}

        data = Path(tmp) / "pairs3000.csv"
        subprocess.run([sys.executable, "-m", "ai2human.data.sample", "--rows", "3000", "--out", str(data)], check=True,
                       stdout=subprocess.DEVNULL)
        eda = run_measured([*RUNNER, "params/demo.yaml", "--only", "eda", "--out", str(out), "--set", "run_name=eda3000",
                            "--set", f"dataset_path={data}"])
        eda["cells_s"] = cell_seconds(out / "eda3000" / "01_eda.ipynb")

    result = {
        "date": date.today().isoformat(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version()},
        "demo": demo,
        "eda_3000_rows": eda,
        "targets": {"demo_wall_s": 240, "demo_peak_gib": 3.0, "eda_3000_cells_s": 30},
    }
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{result['date']}-cpu-demo.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0 if demo["exit_code"] == 0 and eda["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
