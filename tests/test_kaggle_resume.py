"""Resume across Kaggle sessions: a fine-tuning version that stopped after a checkpoint is pushed
again with its own last output attached, and continues from that step."""

from __future__ import annotations

import json

from ai2human.runner.params import resolve_run
from kaggle_fixtures import (  # noqa: F401  (fixtures)
    OK_NOTEBOOK, cells, executed_nb, fake, manifest, project, push, wheel_cache,
)

STOPPED = executed_nb(("trainer.train()", [{"output_type": "error", "ename": "KeyboardInterrupt", "evalue": "",
                                            "traceback": []}]))
CHECKPOINT = {"checkpoints/checkpoint-20/trainer_state.json": b'{"global_step": 20}',
              "checkpoints/checkpoint-20/adapter_model.safetensors": b"\0" * 64,
              "checkpoints/checkpoint-20/optimizer.pt": b"\0" * 64}


def test_a_stopped_fine_tuning_is_pushed_again_and_resumes_from_its_checkpoint(fake, project, capsys):
    fake.add_dataset("tester/ai2human-pairs", {"pairs.csv": b"human,LLM\n"})
    fake.script("ai2human-v5-finetune", ["RUNNING", "ERROR"], {"__notebook__.ipynb": STOPPED, **CHECKPOINT},
                failure="Notebook exceeded its maximum run time")
    spec = project.spec(only="finetune")
    assert push(project, specs=[spec]) == 1
    out = capsys.readouterr().out
    assert "Kaggle keeps its checkpoint at step 20: push the same run again to resume from it" in out
    failed = project.out / "v5/kaggle/02_finetune/versions/1"
    assert (failed / "checkpoints/checkpoint-20/trainer_state.json").is_file()
    assert not (failed / "checkpoints/checkpoint-20/optimizer.pt").exists()  # the weights stay on Kaggle
    assert manifest(project)["notebooks"]["finetune"]["checkpoint_step"] == 20

    assert push(project, "--dry-run", specs=[spec]) == 0
    assert "resuming from its checkpoint at step 20 (its last output attached)" in capsys.readouterr().out

    log = json.dumps([{"stream_name": "stdout", "time": 1.0,
                       "data": "ai2human: resume checkpoint checkpoint-20 (step 20) copied from /kaggle/input/x\n"}])
    fake.script("ai2human-v5-finetune", ["RUNNING", "COMPLETE"],
                {"__notebook__.ipynb": OK_NOTEBOOK, "train_metrics.json": b'{"resumed_from_step": 20}'}, log=log)
    assert push(project, specs=[spec]) == 0

    second = fake.bodies("SaveKernel")[-1]
    assert second["kernelDataSources"] == ["tester/ai2human-v5-finetune"]  # its own earlier output
    setup = [c for c in cells(second) if c["cell_type"] == "code"][0]["source"]
    assert "'resume_from': 'ai2human-v5-finetune'," in setup
    out = capsys.readouterr().out
    assert "resumes from its checkpoint at step 20" in out
    assert "v5/finetune: resumed from step 20" in out
    entry = manifest(project)["notebooks"]["finetune"]
    assert entry["status"] == "completed" and entry["resumed_from_step"] == 20 and entry["version"] == 2


def test_resume_never_pushes_again_without_the_old_output(fake, project):
    project.params.write_text(project.params.read_text() + "resume: never\n")
    spec = resolve_run(project.params, only="finetune", notebook_dir=project.notebooks)
    fake.add_dataset("tester/ai2human-pairs", {"pairs.csv": b"human,LLM\n"})
    fake.script("ai2human-v5-finetune", ["ERROR"], {"__notebook__.ipynb": STOPPED, **CHECKPOINT}, failure="stopped")
    assert push(project, specs=[spec]) == 1
    assert manifest(project)["notebooks"]["finetune"]["checkpoint_step"] == 20
    fake.script("ai2human-v5-finetune", ["COMPLETE"], {"__notebook__.ipynb": OK_NOTEBOOK})
    assert push(project, specs=[spec]) == 0
    second = fake.bodies("SaveKernel")[-1]
    assert len(fake.bodies("SaveKernel")) == 2 and not second.get("kernelDataSources")
    assert "'resume_from': ''," in [c for c in cells(second) if c["cell_type"] == "code"][0]["source"]
