"""The GPU v5 run's summary: per-notebook status and wall time and the generation figures, read from
the run folder the runner wrote (what scripts/gpu_v5_run.sh brings back from the device)."""

import json

from ai2human import rundir
from ai2human.bench.v5_run import summarise


def test_summary_reads_the_run_folder(tmp_path):
    (tmp_path / rundir.MANIFEST).write_text(json.dumps({"status": "failed", "hardware": {"gpu_name": "NVIDIA H200"}, "notebooks": {
        "eda": {"status": "completed", "wall_s": 42.0, "file": "01_eda.ipynb"},
        "finetune": {"status": "completed", "wall_s": 237.0},
        "evaluate": {"status": "failed", "wall_s": 12.5, "error": {"cell_index": 7, "exception": "OutOfMemoryError"}}}}))
    (tmp_path / rundir.TRAIN_METRICS).write_text(json.dumps({"train_tokens_per_second": 5800.0, "evaluation_s": 84.0,
                                                               "evaluations": [{"step": 4}]}))
    (tmp_path / rundir.EVAL_METRICS).write_text(json.dumps({"generation": {"tokens_per_second": 900.0}, "verdict": "x"}))
    doc = summarise(tmp_path, wall_s=300.0, rc=1, t4_gib=15)
    assert doc["notebooks"]["evaluate"]["error"] == {"cell_index": 7, "exception": "OutOfMemoryError"}
    assert doc["notebooks"]["eda"] == {"status": "completed", "wall_s": 42.0}
    assert doc["train"] == {"train_tokens_per_second": 5800.0, "evaluation_s": 84.0}  # lists left out
    assert doc["generation"] == {"generation": {"tokens_per_second": 900.0}}
    assert doc["runner_exit"] == 1 and doc["t4_emulation_gib"] == 15 and doc["hardware"]["gpu_name"] == "NVIDIA H200"
    assert summarise(tmp_path / "missing")["notebooks"] == {}  # a run that never started: nothing to read, no crash
