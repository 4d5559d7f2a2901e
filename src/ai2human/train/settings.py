"""``TrainSettings``: every knob of a fine-tuning run in one object.

The fine-tuning notebook builds it in plain sight (one keyword per line, values from its
parameters), the benchmark builds it from a params file (``from_params``), and the data-parallel
job receives it as JSON (``to_json`` / ``from_json``). All of them hand it to
``train.recipe.run_training``, which is the only code that turns it into a model, a LoRA, an
``SFTConfig`` and a trainer. Field names are the notebook's parameter names, so a params file's
values map onto it without a table of aliases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice


@dataclass(kw_only=True)
class TrainSettings:
    """What to train, how, and where; see the 02_finetune parameters cell for what each knob trades off."""

    run_dir: str
    choice: BackendChoice  # backend, dtype, 4-bit, device (models.hardware.choose_backend)
    # model
    model_name: str
    tokenizer_name: str = ""
    max_seq_length: int
    # LoRA
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: str  # comma list, as in params files
    gradient_checkpointing: str  # unsloth | true | false
    seed: int
    # trainer (TRL's SFTConfig)
    learning_rate: float
    per_device_train_batch_size: int  # the one-GPU value; split over processes by topology()
    gradient_accumulation_steps: int  # the one-GPU value; split over processes by topology()
    per_device_eval_batch_size: int = 0  # 0: auto, EVAL_BATCH_FACTOR x the training micro-batch
    train_sampling: str = "random"
    warmup_steps: int
    num_train_epochs: float
    max_steps: int
    optim: str
    lr_scheduler_type: str
    weight_decay: float
    max_grad_norm: float
    logging_steps: int
    eval_steps: float
    save_steps: float
    save_total_limit: int
    early_stopping_patience: int = 0
    packing: bool = False
    padding_free: bool = False
    report_to: str | list = "none"
    # the run
    resume: str = "auto"  # auto | never | a checkpoint folder
    processes: int = 1  # training processes (distributed.resolve_num_gpus); > 1 launches accelerate
    progress_bars: bool = True  # False in a notebook: tqdm bars are console output, not report content

    # ------------------------------------------------------------ derived values

    def topology(self):
        """Per-process batch and accumulation keeping the one-GPU global batch (``distributed.split_batch``)."""
        from ai2human.train.distributed import split_batch

        return split_batch(self.per_device_train_batch_size, self.gradient_accumulation_steps, self.processes)

    def lora_kwargs(self) -> dict:
        """``models.loading.add_lora``'s keywords after ``model`` and ``choice``."""
        from ai2human.models.loading import parse_target_modules

        return dict(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=parse_target_modules(self.lora_target_modules),
            gradient_checkpointing=self.gradient_checkpointing,
            seed=self.seed,
        )

    def replace(self, **changes) -> "TrainSettings":
        return replace(self, **changes)

    # ------------------------------------------------------------ building and serialising

    @classmethod
    def from_params(cls, params: dict, **given) -> "TrainSettings":
        """Settings from a params mapping (the notebooks' parameter names); ``given`` wins over it.

        Every field without a default must come from one of the two: a params file that lacks a
        knob is an error, never a silent fallback.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise TypeError(f"TrainSettings has no field {', '.join(unknown)}")
        values = {name: params[name] for name in names if name in params and name not in given}
        values.update(given)
        missing = sorted(f.name for f in fields(cls) if f.name not in values and _required(f))
        if missing:
            raise UserError(f"training settings lack {', '.join(missing)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "TrainSettings":
        data = json.loads(text)
        data["choice"] = BackendChoice(**data["choice"])
        return cls(**data)


def _required(f) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING
