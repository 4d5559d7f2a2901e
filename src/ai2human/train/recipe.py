"""The training recipe: settings in, a trained adapter and ``train_metrics.json`` out.

``run_training(settings, train_dataset, eval_dataset)`` is the only place that loads the model,
adds LoRA, builds the SFT config and trainer, trains, saves the adapter and writes the metrics.
The fine-tuning notebook calls it, each process of a data-parallel job calls it
(``train.ddp_worker``), and the benchmark calls it for every case, so a number the benchmark
reports is one the notebook reaches. With ``settings.processes`` > 1 the call made in the notebook
starts that job (``train.launch``) and then loads the saved adapter for the preview.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ai2human import rundir
from ai2human.errors import UserError
from ai2human.train.checkpoints import checkpoint_step, find_checkpoint, train
from ai2human.train.guards import check_finite_weights, finite_guard
from ai2human.train.results import count_parameters, gpu_memory_gib, save_adapter, train_metrics, write_model_cards
from ai2human.train.sft_config import build_sft_config, check_batching, check_settings, resolve_optim
from ai2human.train.trainer import build_trainer, evaluation_lines, phase_clock, read_log_records


@dataclass
class TrainingResult:
    """What ``run_training`` hands back; ``metrics`` is what ``train_metrics.json`` holds (None off rank 0)."""

    train_output: object  # transformers' TrainOutput
    metrics: dict | None
    model: object  # the trained PEFT model (None off rank 0 of a job), ready for the preview
    tokenizer: object
    resume_from: str | None
    notes: list[str] = field(default_factory=list)


def quiet_progress_bars() -> None:
    """No tqdm bars from datasets (the trainer's own follow ``disable_tqdm``; model loading is quiet
    already, ``models.quiet``): console output, not report content."""
    import datasets

    datasets.disable_progress_bars()


def load_model_with_lora(settings, timings: dict | None = None):
    """``(model, tokenizer)``: the base model with the LoRA of ``settings`` (``models.loading``);
    ``timings`` gets ``load_s`` and ``lora_s``."""
    from ai2human.models.loading import add_lora, load_model

    if not settings.progress_bars:
        quiet_progress_bars()
    start = time.perf_counter()
    model, tokenizer = load_model(settings.model_name, settings.choice, settings.max_seq_length, settings.tokenizer_name)
    loaded = time.perf_counter()
    model = add_lora(model, settings.choice, **settings.lora_kwargs())
    if timings is not None:
        timings.update(load_s=loaded - start, lora_s=time.perf_counter() - loaded)
    return model, tokenizer


def load_for_training(settings):
    """What the notebook loads before tokenising: the model with LoRA, or with several training
    processes only the tokenizer (each process loads its own model; a copy here would crowd GPU 0)."""
    if settings.processes > 1 and not _inside_job():
        from ai2human.models.loading import load_tokenizer

        return None, load_tokenizer(settings.model_name, settings.tokenizer_name)
    return load_model_with_lora(settings)


def _inside_job() -> bool:
    """True in a process that ``accelerate launch`` started (it sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def sort_by_length(dataset):
    """The evaluation split longest first: batches of similar lengths carry little padding, and a
    batch too big for memory fails on the first evaluation step, not the last. The eval loss is
    the same mean over the whole split."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    return dataset.select(sorted(range(len(lengths)), key=lambda i: -lengths[i]))


def _gather(value) -> list:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def run_training(settings, train_dataset, eval_dataset=None, *, model=None, tokenizer=None,
                 extra_metrics: dict | None = None, trainer_hooks=(), echo=print) -> TrainingResult:
    """Train as ``settings`` says and save the adapter and ``train_metrics.json`` under ``settings.run_dir``.

    ``model`` / ``tokenizer``: an already loaded model with LoRA (``load_model_with_lora``); the
    benchmark reuses one across cases, the notebook loads it before tokenising. ``extra_metrics``
    go into ``train_metrics.json`` too. ``trainer_hooks`` are called with the built trainer before
    it trains (the benchmark's meter). Notes (resume, optimizer, batching) go to ``echo``.
    """
    has_eval = eval_dataset is not None and len(eval_dataset) > 0
    check_settings(settings, has_eval)  # before anything loads
    resume_from, resume_note = find_checkpoint(settings.run_dir, settings.resume)
    if settings.topology().processes > 1 and not _inside_job():
        return _launch(settings, train_dataset, eval_dataset, resume_from, resume_note, extra_metrics, echo)
    if model is None:
        model, tokenizer = load_model_with_lora(settings)
    return _train_here(settings, model, tokenizer, train_dataset, eval_dataset if has_eval else None,
                       resume_from, resume_note, extra_metrics or {}, trainer_hooks, echo)


def _train_here(settings, model, tokenizer, train_dataset, eval_dataset, resume_from, resume_note,
                extra_metrics, trainer_hooks, echo) -> TrainingResult:
    run_dir = Path(settings.run_dir)
    choice, topology = settings.choice, settings.topology()
    if not settings.progress_bars:
        quiet_progress_bars()
    trainable_params, total_params = count_parameters(model)
    optim, optim_note = resolve_optim(settings.optim, choice)
    notes = [n for n in (resume_note, optim_note, *check_batching(choice, model, settings.packing, settings.padding_free)) if n]
    for note in notes:
        echo(note)
    args = build_sft_config(settings, has_eval=eval_dataset is not None, optim=optim)
    if args.world_size != topology.processes:
        raise UserError(f"these settings are for {topology.processes} process(es) but this runs in {args.world_size}; "
                        "start a multi-process run through run_training in one process, which launches the job")
    clock = phase_clock()
    start = time.perf_counter()
    trainer = build_trainer(
        model=model,
        tokenizer=tokenizer,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=sort_by_length(eval_dataset) if eval_dataset is not None else None,
        choice=choice,
        log_path=run_dir / rundir.TRAIN_LOG,
        early_stopping_patience=settings.early_stopping_patience,
        callbacks=(clock, finite_guard(), *(() if settings.progress_bars else (evaluation_lines(echo),))),
    )
    build_s = time.perf_counter() - start
    for hook in trainer_hooks:
        hook(trainer)
    train_output = train(trainer, resume_from)
    # Drop accelerate's mixed-precision forward wrapper: the preview (and the benchmark's next case,
    # whose trainer would nest another) uses the model as it was.
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    check_finite_weights(model, train_output.global_step, args.output_dir)
    peaks = _gather(gpu_memory_gib()[1])
    metrics = None
    if trainer.is_world_process_zero():
        start = time.perf_counter()
        save_adapter(model, tokenizer, run_dir / rundir.ADAPTER)
        save_s = time.perf_counter() - start
        metrics = train_metrics(
            read_log_records(run_dir / rundir.TRAIN_LOG),
            train_output,
            **clock.summary(),
            trainer_build_s=round(build_s, 3),
            adapter_save_s=round(save_s, 3),
            **topology.metrics(),
            per_device_eval_batch_size=args.per_device_eval_batch_size if eval_dataset is not None else None,
            optim=optim,
            resumed_from_step=checkpoint_step(resume_from),
            resumed_from=resume_from or "",
            peak_gpu_memory_gib=max(peaks),
            peak_gpu_memory_gib_per_gpu=peaks,
            backend=choice.backend,
            dtype=choice.dtype,
            load_in_4bit=choice.load_in_4bit,
            device=_device_name(choice),
            model_name=settings.model_name,
            trainable_params=trainable_params,
            total_params=total_params,
            trainable_share=round(trainable_params / total_params, 6) if total_params else None,
            **extra_metrics,
        )
        from ai2human.data.pairs import save_json

        save_json(metrics, run_dir / rundir.TRAIN_METRICS)
        write_model_cards(settings, metrics)
    trainer.accelerator.wait_for_everyone()
    return TrainingResult(train_output, metrics, model, tokenizer, resume_from, notes)


def _device_name(choice) -> str:
    import torch

    return torch.cuda.get_device_name() if choice.device == "cuda" and torch.cuda.is_available() else "cpu"


def _launch(settings, train_dataset, eval_dataset, resume_from, resume_note, extra_metrics, echo) -> TrainingResult:
    """The multi-process path, from the notebook's process: start the job, then load its adapter."""
    from ai2human.models.loading import load_for_inference
    from ai2human.train import launch

    if settings.resume == "never":
        echo(resume_note)  # the processes see an empty folder, so only this process can say what it deleted
    # The processes must resume from what was found here: "never" has already cleared the folder.
    job_settings = settings.replace(resume=resume_from or "auto")
    start = time.perf_counter()
    job = launch.launch(job_settings, train_dataset, eval_dataset, extra_metrics, echo=echo)
    wall = time.perf_counter() - start
    from ai2human.train.results import add_metrics

    metrics = add_metrics(settings.run_dir, job_wall_s=round(wall, 1))  # includes starting the processes and loading
    model, tokenizer = load_for_inference(settings.model_name, settings.choice, settings.max_seq_length,
                                          Path(settings.run_dir) / rundir.ADAPTER, settings.tokenizer_name)
    return TrainingResult(job.train_output, metrics, model, tokenizer, resume_from, [resume_note])
