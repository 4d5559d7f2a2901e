"""Starting a data-parallel training job: ``accelerate launch``, one process per GPU.

``recipe.run_training`` calls ``launch`` when its settings ask for more than one process. The job
folder ``run_dir/distributed/`` holds the ``TrainSettings`` as JSON, the tokenised splits while it
runs, an accelerate config of our own and rank 0's result::

    python -m accelerate.commands.launch --config_file run_dir/distributed/accelerate_config.yaml \\
        -m ai2human.train.ddp_worker --config run_dir/distributed/job.json

Why a subprocess rather than ``notebook_launcher``: the kernel has already started CUDA (the setup
cell describes the GPU), after which forking GPU workers is refused; fresh processes also hand all
their GPU memory back when training ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.rundir import DISTRIBUTED

JOB = "job.json"
ACCELERATE_CONFIG = "accelerate_config.yaml"
RESULT = "result.json"
WORKER = "ai2human.train.ddp_worker"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # so the processes import this very package


@dataclass
class JobResult:
    """What the distributed job hands back (rank 0's ``result.json``)."""

    train_output: object  # transformers' TrainOutput, rebuilt from rank 0's result
    metrics: dict  # what rank 0 wrote to train_metrics.json
    world_size: int
    job: Path  # the job.json it ran


def _mixed_precision(choice: BackendChoice) -> str:
    return {"bfloat16": "bf16", "float16": "fp16"}.get(choice.dtype, "no") if choice.device == "cuda" else "no"


def write_job(settings, train_dataset, eval_dataset=None, extra_metrics: dict | None = None) -> Path:
    """Write the job (settings, tokenised splits, accelerate config) under ``run_dir/distributed``; returns job.json."""
    import datasets
    import yaml

    folder = Path(settings.run_dir) / DISTRIBUTED
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    processes = settings.topology().processes
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        train_dataset.save_to_disk(str(folder / "train"))
        if eval_dataset is not None:
            eval_dataset.save_to_disk(str(folder / "eval"))
    finally:
        if bars:
            datasets.enable_progress_bars()
    job = {
        "settings": json.loads(settings.to_json()),
        "train_dataset": str(folder / "train"),
        "eval_dataset": str(folder / "eval") if eval_dataset is not None else "",
        "extra_metrics": extra_metrics or {},
    }
    path = folder / JOB
    path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    # A config file of our own, so a user's default accelerate config (DeepSpeed, FSDP...) cannot
    # change the run. MULTI_GPU selects torchrun's launcher, which also starts gloo CPU processes;
    # accelerate's own CPU launcher starts more than one process only through MPI.
    accelerate_config = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU" if processes > 1 else "NO",
        "num_processes": processes,
        "num_machines": 1,
        "machine_rank": 0,
        "gpu_ids": "all",
        "mixed_precision": _mixed_precision(settings.choice),
        "use_cpu": False,  # True would pick the MPI launcher; the processes learn about the CPU from ACCELERATE_USE_CPU
        "debug": False,
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "downcast_bf16": "no",
    }
    (folder / ACCELERATE_CONFIG).write_text(yaml.safe_dump(accelerate_config, sort_keys=False), encoding="utf-8")
    return path


def launch_command(job: str | Path, choice: BackendChoice) -> tuple[list[str], dict]:
    """The ``accelerate launch`` command line for ``job`` and the environment it runs in."""
    job = Path(job)
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(job.parent / ACCELERATE_CONFIG),
        "--main_process_port", "0",  # a free port: two jobs on one machine do not collide
        "-m", WORKER, "--config", str(job),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["TQDM_DISABLE"] = "1"  # progress bars redrawn by two processes are noise once piped; the trainer still prints its logs
    if choice.device != "cuda":
        env["ACCELERATE_USE_CPU"] = "true"  # the Trainer then sets up gloo over CPU processes
    return cmd, env


def run_job(job: str | Path, choice: BackendChoice, echo=print) -> JobResult:
    """Run the job with ``accelerate launch``, echoing its output line by line as it comes."""
    from transformers.trainer_utils import TrainOutput

    cmd, env = launch_command(job, choice)
    echo("$ " + " ".join(cmd[1:]))
    tail: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            echo(line)
            tail = (tail + [line])[-40:]
    folder = Path(job).parent
    if proc.returncode != 0 or not (folder / RESULT).is_file():
        raise UserError(
            f"the distributed training job failed (exit code {proc.returncode}); its output is above, the last lines:\n"
            + "\n".join(tail[-15:]) + f"\nRe-run it by hand with: {' '.join(cmd[1:])}"
        )
    result = json.loads((folder / RESULT).read_text(encoding="utf-8"))
    for split in ("train", "eval"):
        shutil.rmtree(folder / split, ignore_errors=True)  # a copy of what the notebook shows; the settings stay
    return JobResult(
        train_output=TrainOutput(result["global_step"], result["training_loss"], result["train_output_metrics"]),
        metrics=result["metrics"],
        world_size=result["world_size"],
        job=Path(job),
    )


def write_result(settings, result) -> Path:
    """Rank 0's ``result.json`` for ``run_job``, from a ``recipe.TrainingResult``."""
    output = result.train_output
    path = Path(settings.run_dir) / DISTRIBUTED / RESULT
    path.write_text(json.dumps({
        "global_step": output.global_step,
        "training_loss": output.training_loss,
        "train_output_metrics": output.metrics,
        "world_size": settings.topology().processes,
        "metrics": result.metrics,
    }, indent=2, default=str), encoding="utf-8")
    return path


def launch(settings, train_dataset, eval_dataset=None, extra_metrics: dict | None = None, echo=print) -> JobResult:
    """``write_job`` then ``run_job``: train on ``settings.processes`` processes and return the result."""
    job = write_job(settings, train_dataset, eval_dataset, extra_metrics)
    return run_job(job, settings.choice, echo=echo)
