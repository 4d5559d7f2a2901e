"""distributed / launch / ddp_worker: how many GPUs, the global batch, the job, two gloo processes vs one.

The unit tests feed fake GPU counts and backend choices. The slow tests start real jobs: two CPU
processes with the gloo backend, launched by ``recipe.run_training`` as the notebook launches them
on GPUs.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from ai2human import rundir
from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.models.loading import load_tokenizer
from ai2human.models.tiny import TINY_MODEL_NAME
from ai2human.train import distributed as D
from ai2human.train import launch, recipe, tokenizing
from ai2human.train.trainer import read_log_records
from conftest import REPO
from test_training import settings

CPU = BackendChoice("hf", "float32", False, "cpu")
HF_GPU = BackendChoice("hf", "float16", True, "cuda")
UNSLOTH_GPU = BackendChoice("unsloth", "float16", True, "cuda")


# ---------------------------------------------------------------- how many GPUs

def test_auto_uses_every_gpu_with_hf_and_one_with_unsloth():
    assert D.resolve_num_gpus(0, HF_GPU, visible=2)[0] == 2
    assert "DDP" in D.resolve_num_gpus(0, HF_GPU, visible=2)[1]
    assert D.resolve_num_gpus(0, HF_GPU, visible=1) == (1, "training on 1 GPU")
    assert D.resolve_num_gpus(0, UNSLOTH_GPU, visible=1)[0] == 1
    assert D.resolve_num_gpus(0, UNSLOTH_GPU, visible=2)[0] == 1  # the pin did not take (CUDA had started)
    assert D.resolve_num_gpus(1, HF_GPU, visible=2)[0] == 1
    assert D.resolve_num_gpus(0, CPU, visible=0) == (1, "")


def test_impossible_gpu_counts_say_what_to_set():
    with pytest.raises(UserError, match="backend: hf"):
        D.resolve_num_gpus(2, UNSLOTH_GPU, visible=2)
    with pytest.raises(UserError, match="1 GPU"):
        D.resolve_num_gpus(2, HF_GPU, visible=1)
    with pytest.raises(UserError, match="num_gpus must be"):
        D.resolve_num_gpus(-1, HF_GPU, visible=2)


def test_without_a_gpu_several_processes_run_on_the_cpu():
    n, note = D.resolve_num_gpus(2, CPU, visible=0)
    assert n == 2 and "gloo" in note


@pytest.fixture
def cuda_env(monkeypatch):
    """CUDA_VISIBLE_DEVICES as the test sets it, restored afterwards."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return monkeypatch


def test_unsloth_on_two_gpus_pins_the_first(cuda_env):
    note = D.pin_one_gpu(0, "auto", visible=2, unsloth_installed=True)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "pinned CUDA_VISIBLE_DEVICES=0" in note and "Unsloth" in note
    cuda_env.delenv("CUDA_VISIBLE_DEVICES")
    assert "pinned" in D.pin_one_gpu(0, "unsloth", visible=2, unsloth_installed=False)


def test_pin_keeps_the_first_of_the_gpus_already_chosen(cuda_env):
    cuda_env.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert "CUDA_VISIBLE_DEVICES=3" in D.pin_one_gpu(1, "hf", visible=2, unsloth_installed=False)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_no_pin_when_every_gpu_is_used_or_there_is_one(cuda_env):
    assert D.pin_one_gpu(0, "hf", visible=2, unsloth_installed=True) == ""
    assert D.pin_one_gpu(0, "auto", visible=2, unsloth_installed=False) == ""
    assert D.pin_one_gpu(2, "hf", visible=2, unsloth_installed=False) == ""
    assert D.pin_one_gpu(0, "auto", visible=1, unsloth_installed=True) == ""
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


# ---------------------------------------------------------------- the global batch

@pytest.mark.parametrize(
    "batch, accumulation, processes, per_process",
    [
        (2, 4, 2, (2, 2)),  # v5 on Kaggle's T4 x2: accumulation halved
        (2, 4, 1, (2, 4)),
        (4, 1, 2, (2, 1)),  # the demo: accumulation 1 cannot be halved, the batch is
        (2, 3, 2, (1, 3)),
        (2, 4, 4, (2, 1)),
    ],
)
def test_split_batch_keeps_the_global_batch(batch, accumulation, processes, per_process):
    topology = D.split_batch(batch, accumulation, processes)
    assert (topology.per_device_train_batch_size, topology.gradient_accumulation_steps) == per_process
    assert topology.global_batch == batch * accumulation
    assert f"global batch {batch * accumulation}" in topology.describe()
    assert topology.metrics()["global_batch"] == batch * accumulation


def test_split_batch_refuses_a_batch_that_does_not_divide():
    with pytest.raises(UserError, match="multiple of 2"):
        D.split_batch(3, 1, 2)


def test_job_is_launched_with_its_own_accelerate_config(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file
    from datasets import Dataset

    rows = Dataset.from_dict({"input_ids": [[1, 2]], "attention_mask": [[1, 1]], "labels": [[1, 2]]})
    job_settings = settings(tmp_path, choice=HF_GPU, processes=2, per_device_train_batch_size=2, gradient_accumulation_steps=4)
    job = launch.write_job(job_settings, rows, rows, {"tokenization": {"train": {"kept": 1}}})
    config = load_config_from_file(str(job.parent / launch.ACCELERATE_CONFIG))
    assert (config.distributed_type, config.num_processes, config.mixed_precision) == ("MULTI_GPU", 2, "fp16")
    saved = json.loads(job.read_text())
    assert saved["settings"]["processes"] == 2 and saved["extra_metrics"]["tokenization"]["train"]["kept"] == 1
    from ai2human.train.settings import TrainSettings

    assert TrainSettings.from_json(json.dumps(saved["settings"])) == job_settings, "each process gets the same settings"

    cmd, env = launch.launch_command(job, HF_GPU)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and "--config_file" in cmd
    assert cmd[-4:] == ["-m", "ai2human.train.ddp_worker", "--config", str(job)]
    assert "ACCELERATE_USE_CPU" not in env or env["ACCELERATE_USE_CPU"] == os.environ.get("ACCELERATE_USE_CPU")
    assert launch.launch_command(job, CPU)[1]["ACCELERATE_USE_CPU"] == "true"


# ---------------------------------------------------------------- two gloo processes vs one

MAX_LEN = 512


def train_on(run_dir, processes, train_dataset):
    lines: list[str] = []
    job_settings = settings(run_dir, processes=processes, max_seq_length=MAX_LEN, per_device_train_batch_size=2,
                            gradient_accumulation_steps=2, max_steps=3, eval_steps=0, save_steps=2)
    result = recipe.run_training(job_settings, train_dataset, None, echo=lines.append)
    return result, "\n".join(lines)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(tmp_path):
    """Two CPU processes (gloo DDP, batch 2, accumulation 1) against one (batch 2, accumulation 2).

    Both see the same examples in each step: accelerate draws one seeded permutation in every
    process and deals consecutive per-device batches round-robin to the processes, so step 1 of the
    two-process run is batches 1 and 2 of the permutation, which the one-process run accumulates
    in its step 1. That holds within an epoch, so the data (12 examples) is exactly the 3 steps of
    4. The losses then agree up to the order of floating-point sums.
    """
    rows = generate_pairs(40, seed=3)
    pairs = pd.DataFrame({"human": [r["human"] for r in rows], "ai": [r["LLM"] for r in rows]})
    train, _ = tokenizing.tokenize_pairs(pairs, load_tokenizer(TINY_MODEL_NAME), MAX_LEN, "drop")
    train = train.select(range(12))

    one, _ = train_on(tmp_path / "one", 1, train)
    two, output = train_on(tmp_path / "two", 2, train)

    assert (one.metrics["processes"], two.metrics["processes"]) == (1, 2)
    assert "rank 0 of 2: trained to step 3" in output and "rank 1 of 2: trained to step 3" in output
    assert output.count("saved the adapter") == 1, "rank 0 alone saves the adapter"
    run = tmp_path / "two"
    assert (run / rundir.ADAPTER / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in run.iterdir()) == ["adapter", "checkpoints", "distributed", rundir.TRAIN_LOG, rundir.TRAIN_METRICS]
    assert not (run / "distributed" / "train").exists(), "the job's copy of the data is removed after success"

    metrics = {name: json.loads((tmp_path / name / rundir.TRAIN_METRICS).read_text()) for name in ("one", "two")}
    assert metrics["two"]["processes"] == 2 and metrics["one"]["processes"] == 1
    assert metrics["two"]["global_batch"] == metrics["one"]["global_batch"] == 4
    assert (metrics["two"]["per_device_train_batch_size"], metrics["two"]["gradient_accumulation_steps"]) == (2, 1)
    assert metrics["two"]["num_input_tokens_seen"] == metrics["one"]["num_input_tokens_seen"], "same tokens seen"

    logs = {name: read_log_records(tmp_path / name / rundir.TRAIN_LOG) for name in ("one", "two")}
    steps = [r["step"] for r in logs["two"] if "loss" in r]
    assert steps == [1, 2, 3], "each step logged once: one writer"
    losses = {name: [r["loss"] for r in records if "loss" in r] for name, records in logs.items()}
    assert losses["two"] == pytest.approx(losses["one"], rel=1e-3)
    assert losses["two"][-1] < losses["two"][0]
    assert two.train_output.training_loss == pytest.approx(one.train_output.training_loss, rel=1e-3)
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))
    assert checkpoints == ["checkpoint-2", "checkpoint-3"]

    assert two.model is not None, "the launching process loads the saved adapter for the preview"
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "one" / rundir.ADAPTER / "adapter_model.safetensors"))
    b = load_file(str(run / rundir.ADAPTER / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


@pytest.mark.slow
def test_failed_job_names_the_command_to_rerun(tmp_path):
    from datasets import Dataset

    rows = Dataset.from_dict({"input_ids": [[1, 2]], "attention_mask": [[1, 1]], "labels": [[1, 2]]})
    job = launch.write_job(settings(tmp_path, model_name="local:no-such-model", processes=1), rows)
    with pytest.raises(UserError, match="Re-run it by hand") as err:
        launch.run_job(job, CPU, echo=lambda line: None)
    assert "accelerate.commands.launch" in str(err.value)
    assert (job.parent / "train").is_dir(), "a failed job keeps its data for the re-run"


@pytest.mark.slow
def test_notebook_trains_on_two_processes(tmp_path):
    """The fine-tuning notebook's multi-GPU path, run with num_gpus = 2 on the CPU (gloo)."""
    import papermill as pm
    from peft import PeftModel

    from ai2human.models.loading import load_model

    run_dir = tmp_path / "run"
    out = tmp_path / "02_finetune.ipynb"
    pm.execute_notebook(
        str(REPO / "notebooks" / "02_finetune.ipynb"), str(out), cwd=str(tmp_path), progress_bar=False,
        parameters=dict(
            run_dir=str(run_dir), dataset_path=str(REPO / "data" / "sample.csv"), model_name=TINY_MODEL_NAME,
            max_seq_length=1024, learning_rate=2e-3, per_device_train_batch_size=4, gradient_accumulation_steps=1,
            max_steps=4, logging_steps=1, eval_steps=2, save_steps=2, optim="adamw_torch", gradient_checkpointing="false",
            max_eval_samples=8, report_to="none", preview_samples=1, preview_max_new_tokens=8, num_gpus=2,
        ),
    )
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream")
    assert "2 CPU processes with the gloo backend" in text
    assert "2 processes (DDP) x per-device batch 2 x gradient accumulation 1 = global batch 4" in text
    assert "rank 1 of 2: trained to step 4" in text and "fine-tuned   :" in text
    metrics = json.loads((run_dir / rundir.TRAIN_METRICS).read_text())
    assert (metrics["processes"], metrics["global_batch"], metrics["global_step"], metrics["evaluations"]) == (2, 4, 4, 2)
    assert [r["step"] for r in read_log_records(run_dir / rundir.TRAIN_LOG) if "loss" in r] == [1, 2, 3, 4]
    base, _ = load_model(TINY_MODEL_NAME, CPU, 1024)
    assert isinstance(PeftModel.from_pretrained(base, str(run_dir / rundir.ADAPTER)), PeftModel)
