"""Data-parallel fine-tuning on several GPUs (issue 9): ``accelerate launch``, one process per GPU.

On one GPU the fine-tuning notebook trains in its own kernel. With ``num_gpus`` > 1 it writes
what its training cells would use (the tokenised splits, the LoRA and trainer settings) to
``run_dir/distributed/`` and runs this module as a distributed job::

    python -m accelerate.commands.launch --config_file run_dir/distributed/accelerate_config.yaml \\
        -m ai2human.train.distributed --config run_dir/distributed/job.json

Each process loads the model on its own GPU and trains through the functions the notebook calls
(``models.load_model``, ``models.add_lora``, ``training.build_sft_config``,
``training.build_trainer``, ``training.train``); DDP averages the gradients. The gradient
accumulation is divided among the processes so the global batch equals the one-GPU run's. Rank 0
alone writes the log, the checkpoints' model and trainer state, the adapter and the metrics; the
notebook then loads the adapter for its preview.

Why a subprocess rather than ``notebook_launcher``: the kernel has already started CUDA (the setup
cell describes the GPU), after which forking GPU workers is refused; fresh processes also hand all
their GPU memory back when training ends. Why not Unsloth: its multi-GPU mode is not verified with
this project (Kaggle T4 x2 users hit device-mismatch errors), so with Unsloth the notebook pins one
GPU instead. Without a GPU the same job runs CPU processes with the gloo backend; that is how the
tests check it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ai2human import rundir
from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice

# Flip only after a multi-GPU Unsloth run has been checked against the transformers + PEFT one.
UNSLOTH_MULTI_GPU_VERIFIED = False
JOB_DIR = "distributed"  # under run_dir: the job's settings, its data while it runs, its result
JOB = "job.json"
ACCELERATE_CONFIG = "accelerate_config.yaml"
RESULT = "result.json"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # so the processes import this very package


# ---------------------------------------------------------------- how many GPUs

def visible_gpu_count() -> int:
    """GPUs this process may use, counted without starting CUDA.

    Before CUDA starts, ``torch.cuda.device_count()`` asks NVML and honours CUDA_VISIBLE_DEVICES;
    CUDA itself reads that variable once, when it starts, so a pin must come before anything
    (``torch.cuda.is_available()`` included) starts it.
    """
    import torch

    return torch.cuda.device_count()


def _cuda_started() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def pin_one_gpu(num_gpus: int, backend: str, visible: int | None = None, unsloth_installed: bool | None = None) -> str:
    """Hide all GPUs but the first when this run trains on one of several; returns a note, or "".

    That is the case with ``num_gpus = 1``, and with ``num_gpus = 0`` (auto) when Unsloth will be
    used (``backend`` unsloth, or auto with Unsloth installed). Unsloth's single-GPU path fails on
    Kaggle's T4 x2 with device-mismatch errors, and transformers' Trainer would wrap a model in
    DataParallel over every visible GPU. Call it before anything starts CUDA.
    """
    import importlib.util

    if num_gpus < 0:
        raise UserError(f"num_gpus must be 0 (auto) or a number of GPUs, got {num_gpus}")
    visible = visible_gpu_count() if visible is None else visible
    if visible <= 1:
        return ""
    if unsloth_installed is None:
        unsloth_installed = importlib.util.find_spec("unsloth") is not None
    if num_gpus == 1:
        why = "num_gpus = 1"
    elif num_gpus == 0 and (backend == "unsloth" or (backend == "auto" and unsloth_installed)):
        why = ("Unsloth trains on one GPU here (its multi-GPU mode is not verified with this project; "
               f"backend hf trains on all {visible} with accelerate)")
    else:
        return ""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip() or "0"
    os.environ["CUDA_VISIBLE_DEVICES"] = first
    note = f"{visible} GPUs visible; {why}: pinned CUDA_VISIBLE_DEVICES={first}, the others stay idle"
    if _cuda_started():
        note += " (CUDA had already started in this process, so the pin takes effect only after a restart)"
    return note


def resolve_num_gpus(num_gpus: int, choice: BackendChoice, visible: int) -> tuple[int, str]:
    """``(processes, note)``: how many training processes this run uses, and why.

    ``num_gpus = 0`` means all ``visible`` GPUs with transformers + PEFT, one with Unsloth. Without
    a GPU, ``num_gpus`` > 1 starts that many CPU processes (gloo), which runs the multi-GPU code path
    where no GPU is at hand.
    """
    if num_gpus < 0:
        raise UserError(f"num_gpus must be 0 (auto) or a number of GPUs, got {num_gpus}")
    if choice.device != "cuda":
        if num_gpus <= 1:
            return 1, ""
        return num_gpus, f"no GPU: {num_gpus} CPU processes with the gloo backend, to check the multi-GPU code path"
    if choice.backend == "unsloth" and num_gpus > 1 and not UNSLOTH_MULTI_GPU_VERIFIED:
        raise UserError(
            f"num_gpus = {num_gpus} with Unsloth: its multi-GPU mode is not verified with this project. Set "
            f"backend: hf to train on {num_gpus} GPUs with accelerate, or num_gpus: 0 for one GPU with Unsloth"
        )
    if num_gpus > visible:
        raise UserError(f"num_gpus = {num_gpus} but {visible} GPU(s) visible; use num_gpus: 0 for all of them")
    n = 1 if choice.backend == "unsloth" else (num_gpus or visible)
    if n == 1:
        return 1, "training on 1 GPU" + (" (Unsloth)" if choice.backend == "unsloth" and visible > 1 else "")
    return n, f"training on {n} GPUs: data-parallel (DDP) with accelerate, one process per GPU"


# ---------------------------------------------------------------- the global batch

@dataclass
class Topology:
    """Processes and per-process batch of a run, and the one-GPU batch it stands for."""

    processes: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    single_batch: int  # per_device_train_batch_size of the one-GPU run
    single_accumulation: int  # gradient_accumulation_steps of the one-GPU run

    @property
    def global_batch(self) -> int:
        return self.processes * self.per_device_train_batch_size * self.gradient_accumulation_steps

    def describe(self) -> str:
        """The arithmetic, for the notebook."""
        if self.processes == 1:
            return (f"1 process: batch {self.per_device_train_batch_size} x gradient accumulation "
                    f"{self.gradient_accumulation_steps} = global batch {self.global_batch}")
        text = (f"{self.processes} processes (DDP) x per-device batch {self.per_device_train_batch_size} x gradient "
                f"accumulation {self.gradient_accumulation_steps} = global batch {self.global_batch}, as on one GPU "
                f"({self.single_batch} x {self.single_accumulation})")
        if self.per_device_train_batch_size != self.single_batch:
            text += (f"; the per-device batch is {self.per_device_train_batch_size}, not {self.single_batch}, because "
                     f"gradient accumulation {self.single_accumulation} does not split {self.processes} ways")
        return text

    def metrics(self) -> dict:
        """The fields ``train_metrics.json`` records."""
        return {
            "processes": self.processes,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "global_batch": self.global_batch,
        }


def split_batch(per_device_train_batch_size: int, gradient_accumulation_steps: int, processes: int) -> Topology:
    """Per-process batch and accumulation that keep the one-GPU run's global batch.

    The accumulation is divided first (the memory per GPU stays that of one GPU); when it does not
    divide, the per-device batch is lowered to the largest size that does.
    """
    b, a = per_device_train_batch_size, gradient_accumulation_steps
    if b < 1 or a < 1 or processes < 1:
        raise UserError(f"batch {b}, gradient accumulation {a} and processes {processes} must all be >= 1")
    total = b * a
    if total % processes:
        raise UserError(
            f"the global batch per_device_train_batch_size x gradient_accumulation_steps = {b} x {a} = {total} does not "
            f"split evenly over {processes} GPUs: make it a multiple of {processes}, or set num_gpus"
        )
    share = total // processes
    if share % b == 0:
        return Topology(processes, b, share // b, b, a)
    per_device = max(d for d in range(1, b + 1) if share % d == 0)
    return Topology(processes, per_device, share // per_device, b, a)


# ---------------------------------------------------------------- launching the job

@dataclass
class JobResult:
    """What the distributed job hands back to the notebook."""

    train_output: object  # transformers' TrainOutput, rebuilt from rank 0's result
    peak_gpu_memory_gib_per_gpu: list
    trainable_params: int
    total_params: int
    world_size: int
    job: Path  # the job.json it ran

    @property
    def peak_gpu_memory_gib(self) -> float:
        return max(self.peak_gpu_memory_gib_per_gpu, default=0.0)


def _mixed_precision(choice: BackendChoice) -> str:
    return {"bfloat16": "bf16", "float16": "fp16"}.get(choice.dtype, "no") if choice.device == "cuda" else "no"


def write_job(
    run_dir: str | Path,
    topology: Topology,
    *,
    choice: BackendChoice,
    model_name: str,
    tokenizer_name: str,
    max_seq_length: int,
    lora: dict,
    sft: dict,
    train_dataset,
    eval_dataset=None,
    resume_from: str | None = None,
) -> Path:
    """Write the job (settings, tokenised splits, accelerate config) under ``run_dir/distributed``; returns job.json.

    ``lora`` holds ``models.add_lora``'s keywords after ``choice``; ``sft`` holds
    ``training.build_sft_config``'s keywords after ``run_dir`` and ``choice``, with the
    per-process batch of ``topology``.
    """
    import datasets
    import yaml

    run_dir = Path(run_dir)
    folder = run_dir / JOB_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"]) != (
        topology.per_device_train_batch_size, topology.gradient_accumulation_steps
    ):
        raise UserError("the trainer settings' batch and accumulation must be the topology's per-process ones (split_batch)")
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
        "run_dir": str(run_dir),
        "model_name": model_name,
        "tokenizer_name": tokenizer_name,
        "max_seq_length": max_seq_length,
        "choice": asdict(choice),
        "lora": {**lora, "target_modules": list(lora["target_modules"])},
        "sft": sft,
        "train_dataset": str(folder / "train"),
        "eval_dataset": str(folder / "eval") if eval_dataset is not None else "",
        "resume_from": resume_from or "",
        "topology": asdict(topology),
    }
    path = folder / JOB
    path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    # A config file of our own, so a user's default accelerate config (DeepSpeed, FSDP...) cannot
    # change the run. MULTI_GPU selects torchrun's launcher, which also starts gloo CPU processes;
    # accelerate's own CPU launcher starts more than one process only through MPI.
    accelerate_config = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU" if topology.processes > 1 else "NO",
        "num_processes": topology.processes,
        "num_machines": 1,
        "machine_rank": 0,
        "gpu_ids": "all",
        "mixed_precision": _mixed_precision(choice),
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
        "-m", "ai2human.train.distributed", "--config", str(job),
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
        train_output=TrainOutput(result["global_step"], result["training_loss"], result["metrics"]),
        peak_gpu_memory_gib_per_gpu=result["peak_gpu_memory_gib_per_gpu"],
        trainable_params=result["trainable_params"],
        total_params=result["total_params"],
        world_size=result["world_size"],
        job=Path(job),
    )


def launch(run_dir: str | Path, topology: Topology, *, choice: BackendChoice, echo=print, **job) -> JobResult:
    """``write_job`` then ``run_job``: train on ``topology.processes`` processes and return the result."""
    return run_job(write_job(run_dir, topology, choice=choice, **job), choice, echo=echo)


# ---------------------------------------------------------------- one process of the job

def _gather(value) -> list:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def train_process(job: dict) -> dict | None:
    """Train as one process of the job; rank 0 saves the adapter and metrics and returns the result.

    The same sequence as the notebook's Model and Train cells.
    """
    import torch
    from datasets import load_from_disk

    from ai2human.train import sft as training
    from ai2human.data.pairs import save_json
    from ai2human.models.loading import add_lora, load_model

    run_dir = Path(job["run_dir"])
    choice = BackendChoice(**job["choice"])
    topology = Topology(**job["topology"])
    if choice.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # load_model also places the model by LOCAL_RANK
    model, tokenizer = load_model(job["model_name"], choice, job["max_seq_length"], job["tokenizer_name"])
    model = add_lora(model, choice, **job["lora"])
    trainable_params, total_params = training.count_parameters(model)
    train_dataset = load_from_disk(job["train_dataset"])
    eval_dataset = load_from_disk(job["eval_dataset"]) if job["eval_dataset"] else None
    args = training.build_sft_config(run_dir=run_dir, choice=choice, **job["sft"])
    if args.world_size != topology.processes:
        raise UserError(
            f"this job is for {topology.processes} processes but runs in {args.world_size}; "
            "start it with the accelerate launch command that distributed.run_job prints"
        )
    trainer = training.build_trainer(
        model=model,
        tokenizer=tokenizer,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        choice=choice,
        log_path=run_dir / rundir.TRAIN_LOG,
        early_stopping_patience=job["sft"].get("early_stopping_patience", 0),
    )
    resume_from = job["resume_from"] or None
    train_output = training.train(trainer, resume_from)
    peaks = _gather(training.gpu_memory_gib()[1])
    rank = f"rank {args.process_index} of {args.world_size}"
    print(f"{rank}: trained to step {train_output.global_step}", flush=True)
    result = None
    if trainer.is_world_process_zero():
        adapter_files = training.save_adapter(model, tokenizer, run_dir / rundir.ADAPTER)
        metrics = training.train_metrics(
            training.read_log_records(run_dir / rundir.TRAIN_LOG),
            train_output,
            **topology.metrics(),
            resumed_from_step=training.checkpoint_step(resume_from),
            peak_gpu_memory_gib=max(peaks),
            peak_gpu_memory_gib_per_gpu=peaks,
            backend=choice.backend,
            dtype=choice.dtype,
            load_in_4bit=choice.load_in_4bit,
            model_name=job["model_name"],
            trainable_params=trainable_params,
            total_params=total_params,
            resumed_from=resume_from or "",
        )
        save_json(metrics, run_dir / rundir.TRAIN_METRICS)
        result = {
            "global_step": train_output.global_step,
            "training_loss": train_output.training_loss,
            "metrics": train_output.metrics,
            "world_size": args.world_size,
            "peak_gpu_memory_gib_per_gpu": peaks,
            "trainable_params": trainable_params,
            "total_params": total_params,
            "adapter_files": adapter_files,
        }
        (run_dir / JOB_DIR / RESULT).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"{rank}: saved the adapter to {run_dir / rundir.ADAPTER} and the metrics to {run_dir / rundir.TRAIN_METRICS}", flush=True)
    trainer.accelerator.wait_for_everyone()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One process of a distributed fine-tuning job (start it with accelerate launch).")
    parser.add_argument("--config", required=True, help="the job.json that distributed.write_job wrote")
    args = parser.parse_args(argv)
    # As in the notebook: transformers 5.2x renames gradient_checkpointing, Kaggle's 5.17 knows the old name.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6.*")
    job = json.loads(Path(args.config).read_text(encoding="utf-8"))
    try:
        train_process(job)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # torch warns when a process exits with its NCCL group still open
    return 0


if __name__ == "__main__":
    sys.exit(main())
