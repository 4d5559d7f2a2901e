"""`python -m ai2human.score FILE --run RUN`: any humanizer's outputs judged with a run's yardstick."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from ai2human.rundir import EVAL_OUTPUTS, YARDSTICK
from ai2human.score import main
from conftest import REPO


def _score_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ai2human.score", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_scores_a_jsonl_of_the_demo_outputs_per_system(demo_run, tmp_path):
    rows = [json.loads(line) for line in (demo_run / EVAL_OUTPUTS).read_text().splitlines()]
    with open(tmp_path / "outputs.jsonl", "w") as f:
        for r in rows:
            for system in ("finetuned", "identity"):
                f.write(json.dumps({"source": r["input"], "output": r["systems"][system]["output"], "system": system}) + "\n")
    proc = _score_cli(str(tmp_path / "outputs.jsonl"), "--run", str(demo_run), "--out", str(tmp_path / "scores.jsonl"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *table = proc.stdout.splitlines()[:3]
    assert "success rate" in header and "mean score" in header and "fluent" in header and "meaning kept" in header
    assert [line.split()[0] for line in table] == ["finetuned", "identity"]
    scores = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 2 * len(rows)
    for record in scores:
        assert {"system", "success", "score", "judged_human", "fluent", "meaning_kept", "added", "not_empty"} <= set(record)
        assert isinstance(record["success"], bool) and 0 <= record["score"] <= 1
    # the evaluation's own verdicts come back: the same yardstick, the same texts
    evaluated = sum(r["systems"]["finetuned"]["success"] for r in rows)
    assert sum(s["success"] for s in scores if s["system"] == "finetuned") == evaluated
    assert not any(s["success"] for s in scores if s["system"] == "identity")  # the AI text itself never passes


def test_scores_a_csv_without_a_system_column(demo_run, tmp_path):
    sample = pd.read_csv(REPO / "data" / "sample.csv", comment="#").head(6)
    frame = pd.DataFrame({"source": sample["human"], "output": sample["human"]})  # a positive control
    frame.to_csv(tmp_path / "mine.csv", index=False)
    proc = _score_cli(str(tmp_path / "mine.csv"), "--run", str(demo_run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = [json.loads(line) for line in (tmp_path / "mine.scores.jsonl").read_text().splitlines()]
    assert len(scores) == 6 and {s["system"] for s in scores} == {"system"}
    assert sum(s["success"] for s in scores) >= 5 and proc.stdout.splitlines()[1].split()[:2] == ["system", "6"]


@pytest.fixture
def good_run(demo_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / YARDSTICK).write_bytes((demo_run / YARDSTICK).read_bytes())
    return run


@pytest.mark.parametrize("name, content, run_kind, message", [
    ("x.jsonl", '{"source": "a", "text": "b"}\n', "good", "lacks column output"),
    ("x.csv", "", "good", "is empty"),
    ("x.csv", "source,output\n", "good", "has no rows"),
    ("x.txt", "source\toutput\n", "good", "unknown extension '.txt'"),
    ("x.jsonl", '{"source": "a", "output": "b"}\n', "unevaluated", "has no evaluation"),
    ("x.jsonl", '{"source": "a", "output": "b"}\n', "corrupt", "is unreadable"),
    ("x.jsonl", '{"source": "a", "output": \n', "good", "is not readable as jsonl"),
])
def test_bad_input_exits_2_with_one_line(good_run, tmp_path, capsys, name, content, run_kind, message):
    path = tmp_path / name
    path.write_text(content)
    run = good_run
    if run_kind == "unevaluated":
        (run / YARDSTICK).unlink()
    elif run_kind == "corrupt":
        (run / YARDSTICK).write_bytes((run / YARDSTICK).read_bytes()[:200])
    assert main([str(path), "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.glob("*.scores.jsonl"))  # nothing half-written


def test_command_line_exit_status_is_2(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"source": "a", "output": "b"}\n')
    proc = _score_cli(str(tmp_path / "x.jsonl"), "--run", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_run_evaluated_with_the_zero_shot_detector_scores_with_its_base_model(tmp_path, capsys, monkeypatch):
    """The GPU path, small: the yardstick holds Fast-DetectGPT, so the command loads the run's base
    model (here the tiny one, from the manifest) to judge each output."""
    from ai2human.data.sample import generate_pairs
    from ai2human.evaluate import meaning
    from ai2human.evaluate.yardstick import build_yardstick
    from ai2human.evaluate.zero_shot import SignalCache
    from ai2human.models.loading import load_tokenizer
    from ai2human.models.tiny import resolve_model_name
    from ai2human.rundir import MANIFEST
    from test_evaluate_zero_shot import BagOfLetters
    from transformers import AutoModelForCausalLM

    rows = pd.DataFrame(generate_pairs(24, seed=4)).rename(columns={"LLM": "ai"})
    rows = rows.assign(human=rows["human"].str[:200], ai=rows["ai"].str[:200])
    model = AutoModelForCausalLM.from_pretrained(resolve_model_name("local:tiny-qwen2")).eval()
    signals = SignalCache(model, load_tokenizer("local:tiny-qwen2"))
    run = tmp_path / "gpu-run"
    build_yardstick(rows[:16], rows[16:], BagOfLetters(), signals=signals).save(run / YARDSTICK)
    (run / MANIFEST).write_text(json.dumps({"run_name": "gpu-run", "notebooks": {}, "params": {
        "model_name": "local:tiny-qwen2", "backend": "hf", "load_in_4bit": False, "max_seq_length": 512}}))
    pd.DataFrame({"source": rows["ai"][16:], "output": rows["human"][16:]}).to_json(tmp_path / "o.jsonl", orient="records", lines=True)
    monkeypatch.setattr(meaning, "load_embedder", lambda device=None: BagOfLetters())
    assert main([str(tmp_path / "o.jsonl"), "--run", str(run), "--out", str(tmp_path / "s.jsonl")]) == 0
    scores = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(scores) == 8 and all(0 <= s["p_human_fast_detect"] <= 1 and s["lm_perplexity"] > 1 for s in scores)
