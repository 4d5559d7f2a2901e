"""Data-parallel fine-tuning on several GPUs (issue 9): how many processes, and the batch each takes.

With more than one training process, ``recipe.run_training`` starts a job through
``accelerate launch`` (``train.launch``): one process per GPU, each running ``run_training``
itself with the same ``TrainSettings`` (``train.ddp_worker``); DDP averages the gradients. The
gradient accumulation is divided among the processes (``split_batch``) so the global batch equals
the one-GPU run's. Why not Unsloth: its multi-GPU mode is not verified with this project (Kaggle
T4 x2 users hit device-mismatch errors), so with Unsloth the notebook pins one GPU instead
(``pin_one_gpu``). Without a GPU the same job runs CPU processes with the gloo backend; that is
how the tests check it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice

# Flip only after a multi-GPU Unsloth run has been checked against the transformers + PEFT one.
UNSLOTH_MULTI_GPU_VERIFIED = False


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
