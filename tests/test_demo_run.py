"""The demo run, read as a user reads it: every notebook ran, drew its figures and printed its numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ai2human.runner.params import NOTEBOOKS, resolve_run
from conftest import REPO

# The notebooks the demo runs: the pairs stage is skipped with pairs_source: dataset and the prefer
# stage runs only when listed (tests/test_pairs_notebook.py and tests/test_prefer_notebook.py run them).
DEMO_NOTEBOOKS = resolve_run(REPO / "params/demo.yaml").notebooks

pytestmark = pytest.mark.slow


def _cells(run: Path, short: str) -> list[dict]:
    return json.loads((run / NOTEBOOKS[short]).read_text())["cells"]


def _outputs(cells: list[dict]):
    for cell in cells:
        yield from cell.get("outputs", [])


def _text(cells: list[dict]) -> str:
    parts = []
    for out in _outputs(cells):
        if out.get("output_type") == "stream":
            parts.append("".join(out["text"]))
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                parts.append("".join(out["data"][mime]))
    return "\n".join(parts)


def _images(cells: list[dict]) -> int:
    return sum("image/png" in out.get("data", {}) for out in _outputs(cells))


def section_outputs(cells: list[dict]) -> dict[str, list]:
    """Each `##` section's heading -> the outputs of the code cells under it (the stage notebooks'
    tests use it too)."""
    sections: dict[str, list] = {}
    current = None
    for cell in cells:
        source = "".join(cell["source"]).lstrip()
        if cell["cell_type"] == "markdown" and source.startswith("## "):
            current = sections.setdefault(source.splitlines()[0], [])
        elif cell["cell_type"] == "code" and current is not None:
            current += cell.get("outputs", [])
    return sections


def test_manifest_says_every_notebook_completed(demo_run):
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert [n["status"] for n in manifest["notebooks"].values()] == ["completed"] * 3
    for short, entry in manifest["notebooks"].items():
        assert (demo_run / entry["html"]).stat().st_size > 10_000, short
    assert manifest["params"]["model_name"] == "local:tiny-qwen2"
    assert Path(manifest["params"]["dataset_path"]).is_absolute()


@pytest.mark.parametrize("short", DEMO_NOTEBOOKS)
def test_every_code_cell_ran_without_error(demo_run, short):
    for i, cell in enumerate(_cells(demo_run, short)):
        if cell["cell_type"] == "code":
            assert cell["execution_count"] is not None, f"{short} cell {i} did not run"
            assert not any(o.get("output_type") == "error" for o in cell["outputs"]), f"{short} cell {i} raised"


# Console noise printed to stdout: progress bars (tqdm's "42%|####", "12/27 [00:01<00:02"), Python
# warnings ("UserWarning: ...") and kernel log lines. A report's own "[warning] ..." finding is fine.
NOISE = re.compile(r"\d+%\||\d+/\d+ \[\d|\w+Warning: |\[IPKernelApp\]")


@pytest.mark.parametrize("short", DEMO_NOTEBOOKS)
def test_reports_carry_no_stderr_progress_or_warnings(demo_run, short):
    """What lands on stderr is a red box in the report a user reads; progress belongs to the console."""
    found = []
    for i, cell in enumerate(_cells(demo_run, short)):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                continue
            text = "".join(out["text"])
            if out["name"] == "stderr" or NOISE.search(text):
                first = next((line for line in re.split(r"[\r\n]+", text) if line.strip()), "")
                found.append(f"cell {i} {out['name']}: {first[:160]}")
    assert not found, f"{short}: " + " | ".join(found)


@pytest.mark.parametrize("short", DEMO_NOTEBOOKS)
def test_every_section_shows_a_result(demo_run, short):
    """Each `##` stage shows something (a table, a figure, a printed line): a reader never meets a
    section whose cells ran silently."""
    sections = section_outputs(_cells(demo_run, short))
    assert len(sections) >= 3
    silent = [name for name, outputs in sections.items() if not outputs]
    assert not silent, f"{short}: sections without any output: {silent}"


def test_eda_draws_its_figures_and_prints_the_numbers_it_saves(demo_run):
    cells = _cells(demo_run, "eda")
    assert _images(cells) >= 6, "paragraphs, lengths, tokens, top words, word clouds, log-odds, style"
    text = _text(cells)
    assert text.count("Takeaway:") >= 5
    summary = json.loads((demo_run / "eda_summary.json").read_text())
    example = summary["tokens"]["example"]
    assert example["count"] == summary["dataset"]["rows_kept"] == len(example["lengths"])
    assert example["p50"] <= example["p90"] <= example["p95"] <= example["p99"] <= example["max"]
    assert str(example["recommended_max_seq_length"]) in text
    assert f"{example['share_over_max_seq_length']:.1%}" in text
    assert summary["paragraphs"]["ai"]["share_blank_line"] > summary["paragraphs"]["human"]["share_blank_line"]
    assert summary["vocabulary"]["top_words"]["human"] and summary["vocabulary"]["distinguishing"]["ai"]


def test_finetune_loss_falls_and_the_report_diagnoses_it(demo_run):
    metrics = json.loads((demo_run / "train_metrics.json").read_text())
    assert metrics["final_eval_loss"] < metrics["first_eval_loss"]
    assert metrics["global_step"] == 40 and metrics["evaluations"] >= 2
    assert metrics["backend"] == "hf" and metrics["dtype"] == "float32"
    cells = _cells(demo_run, "finetune")
    assert _images(cells) >= 1
    text = _text(cells)
    assert "4-bit" in text, "the setup cell says why 4-bit is off on a CPU"
    assert re.search(r"\[(note|warning)\] ", text), "the diagnostics cell prints its findings"
    records = [json.loads(line) for line in (demo_run / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_loss" in r for r in records) and any("grad_norm" in r for r in records)


def test_adapter_loads_back_with_peft(demo_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ai2human.models.tiny import resolve_model_name

    base = AutoModelForCausalLM.from_pretrained(resolve_model_name("local:tiny-qwen2"))
    model = PeftModel.from_pretrained(base, str(demo_run / "adapter"))
    config = model.peft_config["default"]
    assert config.r == 16 and config.lora_alpha == 32
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_evaluation_table_has_four_systems_with_every_metric_and_a_verdict(demo_run):
    metrics = json.loads((demo_run / "eval_metrics.json").read_text())
    assert list(metrics["systems"]) == ["identity", "base", "finetuned", "human"]
    keys = set(metrics["systems"]["identity"])
    assert {"judged_human_share", "similarity_mean", "adds_any_share", "style_distance", "length_ratio_mean"} <= keys
    for name, row in metrics["systems"].items():
        assert set(row) == keys, name
    assert 0.0 <= metrics["detector"]["accuracy"] <= 1.0 and 0.0 <= metrics["detector"]["roc_auc"] <= 1.0
    assert metrics["systems"]["identity"]["similarity_mean"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["generation"]["tokens_per_second"] > 0
    cells = _cells(demo_run, "evaluate")
    assert _images(cells) >= 1
    assert metrics["verdict"].split(".")[0] in _text(cells)
    lines = (demo_run / "eval_outputs.jsonl").read_text().splitlines()
    assert len(lines) == metrics["rows"]["evaluated"] == 24
    assert set(json.loads(lines[0])["systems"]) == {"identity", "base", "finetuned", "human"}
