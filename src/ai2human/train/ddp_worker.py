"""One process of a data-parallel training job (started by ``train.launch``, never by hand).

Each process reads the job's ``TrainSettings`` and tokenised splits and calls
``recipe.run_training`` with them, the same call the notebook makes on one GPU. Rank 0 alone
writes the log, the checkpoints, the adapter and the metrics, then ``result.json`` for the parent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One process of a distributed fine-tuning job (start it with accelerate launch).")
    parser.add_argument("--config", required=True, help="the job.json that train.launch.write_job wrote")
    args = parser.parse_args(argv)
    # As in the notebook: transformers 5.2x renames gradient_checkpointing, Kaggle's 5.17 knows the old name.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6.*")
    import torch
    from datasets import load_from_disk

    from ai2human import rundir
    from ai2human.train.launch import write_result
    from ai2human.train.recipe import run_training
    from ai2human.train.settings import TrainSettings

    job = json.loads(Path(args.config).read_text(encoding="utf-8"))
    settings = TrainSettings.from_json(json.dumps(job["settings"]))
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if settings.choice.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # load_model also places the model by LOCAL_RANK
    train_dataset = load_from_disk(job["train_dataset"])
    eval_dataset = load_from_disk(job["eval_dataset"]) if job["eval_dataset"] else None
    try:
        result = run_training(settings, train_dataset, eval_dataset, extra_metrics=job.get("extra_metrics") or {},
                              echo=print if rank == 0 else (lambda line: None))
        print(f"rank {rank} of {world}: trained to step {result.train_output.global_step}", flush=True)
        if rank == 0:
            write_result(settings, result)
            run_dir = Path(settings.run_dir)
            print(f"rank 0 of {world}: saved the adapter to {run_dir / rundir.ADAPTER} "
                  f"and the metrics to {run_dir / rundir.TRAIN_METRICS}", flush=True)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # torch warns when a process exits with its NCCL group still open
    return 0


if __name__ == "__main__":
    sys.exit(main())
