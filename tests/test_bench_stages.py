"""bench.stage_report: the stage runs on the GPU machine as docs/benchmarks.md shows them."""

import json

import pytest

from ai2human.bench import stage_report


def test_a_stages_file_renders_notebooks_training_evaluation_dpo_and_targets(tmp_path):
    doc = {"kind": "stages", "device": "NVIDIA H200", "runs": [{
        "date": "2026-12-01", "what": "v5", "command": "T4=15 bash scripts/gpu_v5_run.sh",
        "summary": {"notebooks": {"finetune": {"status": "completed", "wall_s": 120.0}, "evaluate": {"status": "completed", "wall_s": 200.0}},
                    "train": {"backend": "unsloth", "dtype": "float16", "global_step": 20, "train_tokens_per_second": 4000,
                              "evaluation_s": 12.0, "evaluations": 5, "trainable_share": 0.0053},
                    "generation": {"generation": {"base": {"tokens_per_second": 900, "texts": 100, "max_new_tokens": 512, "batch_size": 49}},
                                   "zero_shot": {"texts_scored": 800, "seconds": 20.0, "batch_size": 16}},
                    "takeaways": {"01b_pairs": ["Takeaway: 64 texts restyled at 700 tokens/s (40 pairs/min)"],
                                  "02b_prefer": ["Takeaway: 4 DPO steps at 1.87 s per step"]}},
        "dpo": {"backend": "unsloth", "pairs": 8, "max_length": 2048, "seconds_per_step": 3.2, "peak_reserved_gib": 16.2},
        "notes": ["The path ran:", "- the adapter was saved"]}],
        "targets": [{"target": "evaluation within 300 s", "measured": "200 s", "met": True}]}
    (tmp_path / "2026-12-01-h200-stages.json").write_text(json.dumps(doc))
    (tmp_path / "2026-12-01-other.json").write_text(json.dumps({"kind": "generation"}))  # another section's file
    text = stage_report.markdown(stage_report.load_all(tmp_path))
    assert "| evaluate | completed | 200.0 |" in text
    assert "12.0 s (10% of the fine-tuning notebook's 120 s)" in text
    assert "800 distinct texts scored in 20.0 s at batch 16, 10% of the evaluation notebook" in text
    assert "- 64 texts restyled at 700 tokens/s (40 pairs/min)" in text
    assert "- 4 DPO steps at 1.87 s per step" in text
    assert "- The path ran:\n  - the adapter was saved" in text  # a "- " note is a sub-item of the one before
    assert "**does not fit** a T4's 15 GiB" in text  # 16.2 GiB reserved
    assert "| evaluation within 300 s | 200 s | yes |" in text
    assert stage_report.markdown([]) == ""


@pytest.mark.slow  # loads the tiny model, samples and trains two DPO steps (~10 s on the CI CPU)
def test_dpo_step_measures_sampling_and_steps_and_saves_after_each_phase():
    from ai2human.bench.dpo_step import measure
    from ai2human.models.tiny import TINY_MODEL_NAME

    saved = []
    doc = measure(TINY_MODEL_NAME, k=2, inputs=2, steps=2, max_length=700, new_tokens=8,
                  save=lambda d: saved.append(d["phase"]))
    assert saved[:2] == ["loaded", "sampled"] and saved[-1] == "done" and "dpo step 2" in saved
    assert doc["steps"] == 2 and doc["seconds_per_step"] > 0 and doc["first_step_s"] > 0
    assert doc["sample_new_tokens"] == 8 and doc["sample_tokens_per_second"] > 0 and doc["k"] == 2
