"""The value rules of the notebooks' parameters: choices, ranges and cross-field rules.

The ``parameters`` cells say each knob's name, type and default; this table says which values
make sense. The runner checks a whole params file against it before it creates a run folder
(``check_values``), and each notebook checks its own parameters again in its setup cell,
because a notebook opened on Kaggle runs without the runner:

    from ai2human.rules import check_params
    check_params(globals(), "finetune")

A parameter with no rule here passes on its type alone (floats must still be finite).
Light on purpose: no heavy import, so the runner answers in a fraction of a second.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable

from ai2human.errors import ParamsError

MAX_PROBLEMS = 20  # a file with 300k bad keys must not print 300k lines
# The Trainer's optimizers and schedules (transformers' OptimizerNames / SchedulerType). Written
# out because importing transformers takes seconds; a name missing here is looked up there.
OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor", "adamw_anyprecision",
    "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad", "adamw_bnb_8bit", "adamw_8bit",
    "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit",
    "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "lomo", "adalomo", "grokadamw",
    "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw", "stable_adamw",
)
SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay",
)
REPORTERS = (
    "none", "all", "wandb", "tensorboard", "mlflow", "comet_ml", "clearml", "neptune", "azure_ml", "codecarbon",
    "dagshub", "dvclive", "flyte", "kubeflow", "swanlab", "trackio",
)
BIG = 10_000_000  # step counts and sample counts past this are a typo, not a plan


@dataclass(frozen=True)
class Rule:
    type: type
    allowed: str  # what the rule allows, in words (also the message)
    ok: Callable[[object], bool]
    options: tuple = ()  # the values a typo is matched against for "did you mean"


def _suggest(value, options) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def choice(*options: str, lower: bool = False) -> Rule:
    return Rule(str, "one of " + ", ".join(options), lambda v: (v.strip().lower() if lower else v) in options, options)


def integer(lo: int, hi: int, note: str = "") -> Rule:
    return Rule(int, f"an integer from {lo} to {hi:,}{note}", lambda v: lo <= v <= hi)


def number(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, note: str = "") -> Rule:
    def ok(v) -> bool:
        return math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return Rule(float, f"a number {'>' if lo_open else '>='} {lo:g} and {'<' if hi_open else '<='} {hi:g}{note}", ok)


def text(pattern: str, allowed: str) -> Rule:
    return Rule(str, allowed, lambda v: re.fullmatch(pattern, v) is not None)


def _steps(v) -> bool:
    # transformers reads a value below 1 as a share of the run and needs a whole number above it.
    return math.isfinite(v) and 0 <= v <= BIG and (v < 1 or float(v).is_integer())


STEPS = Rule(float, "0 (off), a share of the run below 1 (0.2 = every 20%), or a whole number of steps", _steps)
NONEMPTY = text(r"(?s).*\S.*", "a non-empty string")
OPT_NAME = Rule(str, "an optimizer name of transformers' Trainer (adamw_torch, adamw_8bit, paged_adamw_32bit...)",
                lambda v: v in OPTIMIZERS or _known_to_transformers("OptimizerNames", v, OPTIMIZERS), OPTIMIZERS)
SCHEDULE = Rule(str, "a schedule of transformers' Trainer (" + ", ".join(SCHEDULERS[:5]) + "...)",
                lambda v: v in SCHEDULERS or _known_to_transformers("SchedulerType", v, SCHEDULERS), SCHEDULERS)

# One rule per parameter, beside its name; the notebooks declare the same names.
RULES: dict[str, Rule] = {
    # shared
    "dataset_path": NONEMPTY,
    "human_column": NONEMPTY,
    "ai_column": NONEMPTY,
    "model_name": NONEMPTY,
    "max_seq_length": integer(64, 131_072),
    "seed": integer(0, 2**32 - 1),
    "split_seed": integer(0, 2**32 - 1),
    "val_size": number(0, 1, hi_open=True, note=" (0 holds nothing out)"),
    "backend": choice("auto", "unsloth", "hf"),
    # 01_eda
    "top_n_words": integer(1, 500),
    # 01b_pairs (pairs_source: also 02_finetune)
    "pairs_source": choice("dataset", "reverse", "both"),
    "styler_model": NONEMPTY,
    "styling_instruction": NONEMPTY,
    "pairs_rows": integer(0, BIG, " (0: all training rows)"),
    "styler_max_new_tokens": integer(1, 32_768),
    "styler_temperature": number(0, 10, note=" (0: greedy)"),
    "styler_top_p": number(0, 1, lo_open=True),
    "styler_batch_size": integer(0, 4096, " (0: sized automatically)"),
    # 02_finetune
    "num_gpus": integer(0, 64, " (0: all visible)"),
    "max_train_samples": integer(0, BIG, " (0: all)"),
    "max_eval_samples": integer(0, BIG, " (0: all)"),
    "overlong": choice("drop", "truncate"),
    "lora_r": integer(1, 1024),
    "lora_alpha": integer(1, 4096),
    "lora_dropout": number(0, 1, hi_open=True),
    "lora_target_modules": text(r"\s*[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*,?\s*", "a comma list of module names (q_proj,k_proj,...)"),
    "gradient_checkpointing": choice("unsloth", "true", "false", lower=True),
    "learning_rate": number(0, 1, lo_open=True),
    "per_device_train_batch_size": integer(1, 4096),
    "per_device_eval_batch_size": integer(0, 4096, " (0: automatic)"),
    "gradient_accumulation_steps": integer(1, 4096),
    "train_sampling": choice("random", "group_by_length", "batch_rebalance"),
    "warmup_steps": integer(0, BIG),
    "num_train_epochs": number(0, 1000, note=" (used when max_steps is 0)"),
    "max_steps": integer(0, BIG, " (0: train for num_train_epochs)"),
    "optim": OPT_NAME,
    "lr_scheduler_type": SCHEDULE,
    "weight_decay": number(0, 10),
    "max_grad_norm": number(0, 1e6, note=" (0: no clipping)"),
    "logging_steps": integer(1, BIG),
    "eval_steps": STEPS,
    "save_steps": STEPS,
    "save_total_limit": integer(0, 10_000, " (0: keep all)"),
    "early_stopping_patience": integer(0, 10_000, " (0: off)"),
    "resume": NONEMPTY,
    "report_to": text(r"\s*[a-z_]+(\s*,\s*[a-z_]+)*\s*", "none, wandb, tensorboard... (a comma list)"),
    "wandb_project": text(r"[^/\\#?%:]{0,128}", "a W&B project name (none of / \\ # ? % :)"),
    "preview_samples": integer(0, 1000),
    "preview_max_new_tokens": integer(1, 32_768),
    "hub_model_id": text(r"|[\w.-]+/[\w.-]+", '"" or OWNER/NAME'),
    # 02b_prefer (DPO after fine-tuning; max_new_tokens, temperature, top_p: shared with 03_evaluate)
    "dpo_rows": integer(1, BIG),
    "dpo_k": integer(2, 64, " (best and worst of k samples make a pair)"),
    "dpo_temperature": number(0, 10, lo_open=True, note=" (greedy would give k identical samples)"),
    "dpo_min_margin": number(0, 1),
    "dpo_beta": number(0, 100, lo_open=True),
    "dpo_sft_weight": number(0, 100, note=" (0: plain DPO)"),
    "dpo_learning_rate": number(0, 1, lo_open=True),
    "dpo_max_steps": integer(1, BIG),
    "dpo_batch_size": integer(1, 4096),
    "dpo_gradient_accumulation_steps": integer(1, 4096),
    "dpo_max_length": integer(64, 131_072),
    "dpo_probe_rows": integer(1, BIG),
    "dpo_probe_steps": integer(1, BIG),
    "dpo_gen_batch_size": integer(0, 4096, " (0: sized automatically)"),
    # 03_evaluate
    "eval_samples": integer(0, BIG, " (0: all)"),
    "eval_batch_size": integer(0, 4096, " (0: sized automatically)"),
    "zero_shot_detector": choice("auto", "on", "off"),
    "max_new_tokens": integer(1, 32_768),
    "temperature": number(0, 10, note=" (0: greedy)"),
    "top_p": number(0, 1, lo_open=True),
    "min_similarity": number(-1, 1),
}


def _cross(v: dict) -> list[str]:
    """Rules between parameters; each applies only when the notebook declares all its names."""
    problems = []

    def has(*names):
        return all(n in v for n in names)

    if has("early_stopping_patience", "eval_steps", "save_steps") and v["early_stopping_patience"] > 0:
        if v["eval_steps"] == 0 or v.get("val_size", 1) == 0:
            problems.append("early_stopping_patience: needs evaluation (val_size > 0 and eval_steps > 0), or set it to 0")
        elif v["save_steps"] != v["eval_steps"]:
            problems.append(f"early_stopping_patience: keeps the best checkpoint, so save_steps must equal eval_steps "
                            f"({v['eval_steps']:g}), got save_steps {v['save_steps']:g}")
    if has("max_steps", "num_train_epochs") and v["max_steps"] == 0 and v["num_train_epochs"] <= 0:
        problems.append("num_train_epochs: must be > 0 when max_steps is 0 (it then sets the length of training)")
    if has("pairs_source", "val_size") and v["pairs_source"] != "dataset" and v["val_size"] == 0:
        problems.append(f"pairs_source: {v['pairs_source']} filters restyled texts with a yardstick calibrated on the "
                        "validation split; set val_size above 0, or pairs_source: dataset")
    if has("human_column", "ai_column") and v["human_column"] == v["ai_column"]:
        problems.append(f"ai_column: the same column as human_column ({v['ai_column']!r}); they must differ")
    # The styler's budget matters only where the pairs stage runs (pairs_source other than dataset).
    styling = v.get("pairs_source", "dataset") != "dataset"
    for name in ("max_new_tokens", "preview_max_new_tokens", "styler_max_new_tokens"):
        if name == "styler_max_new_tokens" and not styling:
            continue
        if has(name, "max_seq_length") and v[name] >= v["max_seq_length"]:
            problems.append(f"{name}: {v[name]} leaves no room for the prompt in max_seq_length {v['max_seq_length']}")
    if has("dpo_max_length", "max_seq_length") and v["dpo_max_length"] > v["max_seq_length"]:
        problems.append(f"dpo_max_length: {v['dpo_max_length']} is longer than max_seq_length {v['max_seq_length']}, "
                        "the context the model is loaded with; lower it or raise max_seq_length")
    if has("report_to"):
        unknown = [r for r in re.split(r"\s*,\s*", v["report_to"].strip()) if r not in REPORTERS]
        if unknown:
            problems.append(f"report_to: {', '.join(map(repr, unknown))} is not a known integration ({', '.join(REPORTERS)})"
                            + _suggest(unknown[0], REPORTERS))
    if has("report_to", "wandb_project") and "wandb" in v["report_to"] and not v["wandb_project"].strip():
        problems.append("wandb_project: empty while report_to includes wandb; name the project or set report_to: none")
    return problems


def _known_to_transformers(enum: str, value: str, listed: tuple) -> bool:
    if difflib.get_close_matches(value, listed, n=1, cutoff=0.85):
        return False  # a typo of a listed name: no need to spend seconds importing transformers
    try:
        if enum == "OptimizerNames":
            from transformers.training_args import OptimizerNames as names
        else:
            from transformers.trainer_utils import SchedulerType as names
    except Exception:  # not installed here: the written-out list decides
        return False
    return value in {n.value for n in names}


def _type_ok(value, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def problem(name: str, value) -> str | None:
    """What is wrong with one parameter's value, or None."""
    rule = RULES.get(name)
    if rule is None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name}: {value} is not a finite number"
        return None
    if not _type_ok(value, rule.type):
        return f"{name}: expected {rule.allowed}, got {value!r} ({type(value).__name__})"
    if rule.ok(value):
        return None
    shown = repr(value) if not isinstance(value, str) or len(value) <= 60 else repr(value[:60] + "...")
    hint = _suggest(value, rule.options) if rule.options and isinstance(value, str) else ""
    return f"{name}: {shown} is not allowed; expected {rule.allowed}{hint}"


def check_values(values: dict) -> list[str]:
    """Every problem with these parameter values (single values, then cross-field rules)."""
    problems, valid = [], {}
    for name, value in values.items():
        p = problem(name, value)
        if p:
            problems.append(p)
        elif name in RULES:
            valid[name] = value
    # Cross-field rules see only values that passed their own rule, so one typo gives one message.
    return problems + _cross(valid)


def format_problems(problems: list[str], limit: int = MAX_PROBLEMS) -> str:
    """A numbered problem list, cut to ``limit`` lines with the count of the rest."""
    shown = [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        shown.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(shown)


def check_params(namespace: dict, notebook: str = "") -> None:
    """Check the parameters a notebook holds (its ``globals()``); raise ParamsError listing every problem.

    Only names with a rule are read, so the notebook's other variables are never touched.
    """
    values = {name: namespace[name] for name in RULES if name in namespace}
    problems = check_values(values)
    if problems:
        where = f"{notebook} parameters" if notebook else "parameters"
        raise ParamsError(f"{where}: {len(problems)} problem(s):\n{format_problems(problems)}")
