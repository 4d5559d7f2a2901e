"""train: response-only labels, the SFT config, the recipe end to end, resume, the demo's report.

Training tests use the tiny model on a few short synthetic pairs: a handful of optimizer steps
take a second or two on a CPU. Reliability cases (corrupt checkpoints, divergence, long preview
prompts, parameter counts) are in test_train_reliability.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from ai2human import rundir
from ai2human.data.prompts import format_prompt
from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.models.loading import load_model
from ai2human.models.tiny import TINY_MODEL_NAME
from ai2human.train import checkpoints, preview, recipe, results, sft_config, tokenizing, trainer
from ai2human.train.settings import TrainSettings

CPU = BackendChoice("hf", "float32", False, "cpu")
MAX_LEN = 512
TRAIN_LEN = 256  # training tests cut examples short: a step then takes a fraction of a second


@pytest.fixture(scope="module")
def tokenizer():
    return load_model(TINY_MODEL_NAME, CPU, MAX_LEN)[1]


@pytest.fixture(scope="module")
def pairs():
    rows = generate_pairs(60, seed=3)
    return pd.DataFrame({"human": [r["human"] for r in rows], "ai": [r["LLM"] for r in rows]})


@pytest.fixture(scope="module")
def datasets(pairs, tokenizer):
    """(train, eval) tokenised splits for the training tests, cut to TRAIN_LEN tokens."""
    train, _ = tokenizing.tokenize_pairs(pairs.head(24), tokenizer, TRAIN_LEN, "truncate")
    evals, _ = tokenizing.tokenize_pairs(pairs.tail(6), tokenizer, TRAIN_LEN, "truncate", split="eval")
    return train, evals


def settings(run_dir, **over) -> TrainSettings:
    """Small, fast settings for the tiny model on a CPU."""
    values = dict(
        run_dir=str(run_dir), choice=CPU, model_name=TINY_MODEL_NAME, max_seq_length=TRAIN_LEN,
        lora_r=8, lora_alpha=16, lora_dropout=0.0, lora_target_modules="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        gradient_checkpointing="false", seed=3407, learning_rate=5e-3, per_device_train_batch_size=2,
        gradient_accumulation_steps=1, warmup_steps=1, num_train_epochs=1.0, max_steps=8, optim="adamw_torch",
        lr_scheduler_type="linear", weight_decay=0.0, max_grad_norm=1.0, logging_steps=1, eval_steps=4, save_steps=4,
        save_total_limit=0, report_to="none", progress_bars=False,
    )
    values.update(over)
    return TrainSettings(**values)


def run(run_dir, train, evals, **over):
    return recipe.run_training(settings(run_dir, **over), train, evals, echo=lambda line: None)


# ---------------------------------------------------------------- tokenisation

def test_prompt_is_masked_and_response_with_eos_is_trained(pairs, tokenizer):
    ai, human = pairs["ai"][0], pairs["human"][0]
    ex = tokenizing.tokenize_example(ai, human, tokenizer)
    masked = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == tokenizing.IGNORE_INDEX]
    trained = [lab for lab in ex["labels"] if lab != tokenizing.IGNORE_INDEX]
    assert tokenizer.decode(masked) == format_prompt(ai)
    assert tokenizer.decode(trained) == human + tokenizer.eos_token
    assert trained[-1] == tokenizer.eos_token_id  # the model learns to stop
    assert ex["attention_mask"] == [1] * len(ex["input_ids"])
    assert tokenizing.label_counts(ex) == (len(masked), len(trained))


def test_slow_tokenizers_mask_the_same_tokens(pairs, tokenizer):
    class Slow:  # no offset mapping: the prompt is tokenised on its own instead
        is_fast = False
        eos_token = tokenizer.eos_token

        def __call__(self, texts, **kwargs):
            assert "return_offsets_mapping" not in kwargs
            return tokenizer(texts)

    ai, human = pairs["ai"].tolist()[:3], pairs["human"].tolist()[:3]
    assert tokenizing.tokenize_examples(ai, human, Slow()) == tokenizing.tokenize_examples(ai, human, tokenizer)


def test_train_on_inputs_trains_every_token(pairs, tokenizer):
    ex = tokenizing.tokenize_example(pairs["ai"][0], pairs["human"][0], tokenizer, train_on_inputs=True)
    assert ex["labels"] == ex["input_ids"]


def test_overlong_examples_are_dropped_or_truncated(pairs, tokenizer):
    dropped, report = tokenizing.tokenize_pairs(pairs, tokenizer, MAX_LEN, "drop")
    over = sum(n > MAX_LEN for n in report.lengths)
    assert over > 0, "the fixture needs some long examples"
    assert (report.over_max, report.dropped, report.kept, len(dropped)) == (over, over, len(pairs) - over, len(pairs) - over)
    assert f"{over} (" in report.summary() and "dropped" in report.summary()
    assert max(len(ids) for ids in dropped["input_ids"]) <= MAX_LEN

    cut, report = tokenizing.tokenize_pairs(pairs, tokenizer, MAX_LEN, "truncate")
    assert report.truncated + report.dropped == over and report.kept == len(cut)
    assert max(len(ids) for ids in cut["input_ids"]) == MAX_LEN
    assert all(any(lab != tokenizing.IGNORE_INDEX for lab in labels) for labels in cut["labels"])
    assert report.to_dict()["share_over"] == pytest.approx(over / len(pairs), abs=1e-4)


def test_truncation_that_leaves_no_response_drops_the_example(pairs, tokenizer):
    prompt_len = len(tokenizer(format_prompt(pairs["ai"][0]))["input_ids"])
    with pytest.raises(UserError, match="longer than max_seq_length"):
        tokenizing.tokenize_pairs(pairs.head(1), tokenizer, prompt_len - 1, "truncate")
    with pytest.raises(UserError, match="overlong: truncate"):
        tokenizing.tokenize_pairs(pairs.head(1), tokenizer, 16, "drop")
    with pytest.raises(UserError, match="overlong"):
        tokenizing.tokenize_pairs(pairs, tokenizer, MAX_LEN, "cut")


def test_labels_html_shows_both_parts_escaped(tokenizer):
    ex = tokenizing.tokenize_example("AI <b>text</b>", "Human & text", tokenizer)
    html = tokenizing.labels_html(ex, tokenizer)
    assert "line-through" in html and "&lt;b&gt;" in html and "&amp;" in html and "<b>" not in html
    body = html.split("<pre", 1)[1]  # after the legend
    assert body.index("Below is an instruction") < body.index("color:#060") < body.index("Human &amp; text")


def test_eda_warning_when_max_seq_length_cuts_more_than_10_percent(tmp_path):
    summary = {"tokens": {"tokenizer": "tiny", "max_seq_length": 2048,
                          "example": {"lengths": [100] * 8 + [3000] * 2, "recommended_max_seq_length": 4096}}}
    path = tmp_path / rundir.EDA_SUMMARY
    path.write_text(json.dumps(summary))
    assert "20.0%" in tokenizing.eda_overlong_warning(path, 2048)
    assert tokenizing.eda_overlong_warning(path, 4096) == ""
    assert tokenizing.eda_overlong_warning(tmp_path / "missing.json", 2048) == ""
    path.write_text('{"tokens": {}}')
    assert tokenizing.eda_overlong_warning(path, 2048) == ""  # a summary of another layout is not an error


# ---------------------------------------------------------------- settings and config

def test_bitsandbytes_optimizers_fall_back_on_cpu():
    assert sft_config.resolve_optim("adamw_torch", CPU) == ("adamw_torch", "")
    optim, note = sft_config.resolve_optim("paged_adamw_32bit", CPU)
    assert optim == "adamw_torch" and "CUDA" in note


def test_padding_free_on_hf_without_flash_attention_is_allowed_with_a_note():
    model, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    assert sft_config.check_batching(CPU, model, packing=False, padding_free=False) == []
    notes = sft_config.check_batching(CPU, model, packing=False, padding_free=True)
    assert len(notes) == 1 and "no flash-attention" in notes[0]
    unsloth = BackendChoice("unsloth", "float16", True, "cuda")
    assert "Unsloth" in sft_config.check_batching(unsloth, model, packing=True, padding_free=False)[0]


def config(run_dir, has_eval=True, **over):
    return sft_config.build_sft_config(settings(run_dir, **over), has_eval=has_eval)


def test_sft_config_follows_the_settings(tmp_path):
    args = config(tmp_path, max_steps=0, num_train_epochs=2.0, eval_steps=0.2, save_steps=0.5)
    assert args.max_steps == -1 and args.num_train_epochs == 2.0
    assert args.output_dir == str(tmp_path / rundir.CHECKPOINTS)
    assert (args.eval_strategy, args.eval_steps, args.save_steps) == ("steps", 0.2, 0.5)
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing
    assert args.max_length == TRAIN_LEN and args.logging_first_step
    assert args.disable_tqdm, "no progress bars in a notebook report"
    assert not args.logging_nan_inf_filter, "a NaN loss is logged as NaN, not hidden behind a running mean"
    assert config(tmp_path, has_eval=False).eval_strategy == "no"
    assert config(tmp_path, eval_steps=0).eval_strategy == "no"
    assert config(tmp_path, save_steps=0).save_strategy == "no"
    # TRL cannot cut a flattened batch, so padding-free without packing leaves the cut to us
    assert config(tmp_path, padding_free=True).max_length is None
    assert args.ddp_find_unused_parameters is False  # LoRA uses every trainable weight: DDP need not search
    assert args.train_sampling_strategy == "random"  # the reference runs' order unless asked otherwise
    assert config(tmp_path, train_sampling="group_by_length").train_sampling_strategy == "group_by_length"
    # evaluation keeps no activations for a backward pass: auto = twice the training batch
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (2, 4)
    assert config(tmp_path, per_device_eval_batch_size=3).per_device_eval_batch_size == 3
    # with several processes the accumulation is split, the global batch kept
    two = config(tmp_path, processes=2, per_device_train_batch_size=2, gradient_accumulation_steps=4)
    assert (two.per_device_train_batch_size, two.gradient_accumulation_steps) == (2, 2)


def test_sft_config_explains_impossible_combinations(tmp_path):
    with pytest.raises(UserError, match="num_train_epochs"):
        config(tmp_path, max_steps=0, num_train_epochs=0.0)
    with pytest.raises(UserError, match="train_sampling must be one of random, group_by_length"):
        config(tmp_path, train_sampling="by_length")
    with pytest.raises(UserError, match="needs evaluation"):
        config(tmp_path, has_eval=False, early_stopping_patience=2)
    with pytest.raises(UserError, match="save_steps equal to eval_steps"):
        config(tmp_path, early_stopping_patience=2, eval_steps=4, save_steps=2)
    args = config(tmp_path, early_stopping_patience=2)
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"


def test_settings_travel_as_json_and_come_from_params_files(tmp_path):
    s = settings(tmp_path, processes=2)
    assert TrainSettings.from_json(s.to_json()) == s
    params = {k: v for k, v in json.loads(s.to_json()).items() if k not in ("run_dir", "choice")}
    params["description"] = "other notebooks' parameters are ignored"
    assert TrainSettings.from_params(params, run_dir=str(tmp_path), choice=CPU) == s
    del params["learning_rate"]
    with pytest.raises(UserError, match="lack learning_rate"):
        TrainSettings.from_params(params, run_dir=str(tmp_path), choice=CPU)


# ---------------------------------------------------------------- checkpoints and the log

def test_find_checkpoint_by_path_and_never(tmp_path, datasets):
    run(tmp_path, *datasets, max_steps=2, save_steps=2, eval_steps=0)
    two = tmp_path / rundir.CHECKPOINTS / "checkpoint-2"
    assert checkpoints.find_checkpoint(tmp_path, "checkpoints/checkpoint-2")[0] == str(two)
    with pytest.raises(UserError, match="not an intact checkpoint"):
        checkpoints.find_checkpoint(tmp_path, "checkpoints/checkpoint-99")
    path, note = checkpoints.find_checkpoint(tmp_path, "never")
    assert path is None and "deleted 1" in note and not two.exists()
    assert checkpoints.checkpoint_step(str(two)) == 2 and checkpoints.checkpoint_step(None) == 0


def test_log_callback_writes_on_the_first_process_only(tmp_path):
    from transformers import TrainerState

    log = trainer.log_callback(tmp_path / rundir.TRAIN_LOG)
    other = TrainerState(is_world_process_zero=False, global_step=1)
    log.on_train_begin(None, other, None)
    log.on_log(None, other, None, logs={"loss": 1.0})
    assert not (tmp_path / rundir.TRAIN_LOG).exists(), "a second DDP process writes nothing"
    first = TrainerState(global_step=1)
    log.on_train_begin(None, first, None)
    log.on_log(None, first, None, logs={"loss": 1.0})
    assert [r["loss"] for r in trainer.read_log_records(tmp_path / rundir.TRAIN_LOG)] == [1.0]


def test_resume_does_not_warn_about_fractional_steps():
    import logging

    quiet = trainer._FractionalStepsOnResume()

    def passes(lines):
        message = "Warning: The following arguments do not match the ones in the `trainer_state.json`: " + "".join(lines)
        return quiet.filter(logging.LogRecord("transformers.trainer_utils", logging.WARNING, "", 0, message, None, None))

    assert not passes(["\n\teval_steps: 0.2 (from args) != 8 (from trainer_state.json)",
                       "\n\tsave_steps: 0.2 (from args) != 8 (from trainer_state.json)"])
    assert passes(["\n\teval_steps: 0.2 (from args) != 8 (from trainer_state.json)",
                   "\n\tper_device_train_batch_size: 2 (from args) != 4 (from trainer_state.json)"]), "a real change still warns"
    assert passes(["\n\tlogging_steps: 2 (from args) != 1 (from trainer_state.json)"])


# ---------------------------------------------------------------- the recipe

class Interrupt(Exception):
    """Stands in for a Kaggle session hitting its time limit."""


def interrupt_at(step):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt

    return lambda built: built.add_callback(Stop())


@pytest.mark.slow  # trains or generates with the tiny model
def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, datasets):
    train, evals = datasets
    with pytest.raises(Interrupt):  # after checkpoint-4, before checkpoint-8
        recipe.run_training(settings(tmp_path), train, evals, trainer_hooks=(interrupt_at(6),), echo=lambda line: None)
    # on_step_end runs before the step is logged, so the log stops at step 5
    assert max(r["step"] for r in trainer.read_log_records(tmp_path / rundir.TRAIN_LOG)) == 5
    assert not (tmp_path / rundir.ADAPTER).exists(), "no adapter from a run that did not finish"

    notes: list[str] = []
    result = recipe.run_training(settings(tmp_path), train, evals, echo=notes.append)  # a new session
    assert any("resuming from checkpoint-4 (step 4)" in n for n in notes)
    assert result.train_output.global_step == 8 and result.resume_from.endswith("checkpoint-4")
    records = trainer.read_log_records(tmp_path / rundir.TRAIN_LOG)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9)), "each step logged once"
    assert [r["step"] for r in records if "eval_loss" in r] == [4, 8]
    metrics = json.loads((tmp_path / rundir.TRAIN_METRICS).read_text())
    assert metrics["resumed_from_step"] == 4 and metrics["train_steps_this_session"] == 4

    # re-running after the end loads the last checkpoint instead of training one step past it
    again = recipe.run_training(settings(tmp_path), train, evals, echo=lambda line: None)
    assert again.train_output.global_step == 8 and again.train_output.metrics["already_finished"]
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / rundir.CHECKPOINTS / "checkpoint-8" / "adapter_model.safetensors"))
    name = next(k for k in saved if "lora_B" in k)
    live = dict(again.model.named_parameters())[name.replace(".weight", ".default.weight")]
    assert torch.equal(live.detach(), saved[name])

    # the same run without interruption ends at the same step with the same loss
    straight = tmp_path / "straight"
    run(straight, train, evals)
    straight_loss = [r["loss"] for r in trainer.read_log_records(straight / rundir.TRAIN_LOG) if "loss" in r]
    assert [r["loss"] for r in records if "loss" in r][-1] == pytest.approx(straight_loss[-1], rel=1e-3)


@pytest.mark.slow  # trains or generates with the tiny model
def test_training_lowers_eval_loss_and_saves_a_loadable_adapter_with_its_card(tmp_path, datasets):
    from peft import PeftModel

    train, evals = datasets
    lines: list[str] = []
    s = settings(tmp_path, max_steps=12, eval_steps=6, save_steps=0)
    result = recipe.run_training(s, train, evals, echo=lines.append)
    assert [line.split(":")[0] for line in lines if "eval loss" in line] == ["step 6/12", "step 12/12"]
    metrics = json.loads((tmp_path / rundir.TRAIN_METRICS).read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    assert metrics["final_eval_loss"] < metrics["first_eval_loss"]
    assert metrics["global_step"] == 12 and metrics["evaluations"] == 2 and metrics["backend"] == "hf"
    assert not list((tmp_path / rundir.CHECKPOINTS).glob("checkpoint-*"))

    # the speed counts training steps only: above the trainer's figure, which includes evaluation
    assert metrics["train_tokens_per_second"] > metrics["tokens_per_second_whole_call"] > 0
    assert metrics["evaluations_this_session"] == 2 and metrics["evaluation_s"] > 0 and metrics["first_step_s"] > 0
    parts = metrics["first_step_s"] + metrics["train_steps_s"] + metrics["evaluation_s"] + metrics["other_s"]
    assert parts == pytest.approx(metrics["train_call_s"], abs=0.01)
    assert metrics["per_device_eval_batch_size"] == 4
    lines = results.timing_lines(metrics)
    assert any("tokens/s over the training steps" in line for line in lines)
    assert any(line.startswith("evaluation: ") and "in 2 passes" in line for line in lines)

    files = sorted(p.name for p in (tmp_path / rundir.ADAPTER).iterdir())
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files and "tokenizer.json" in files
    assert not any(f.startswith("model") for f in files), "no merged model is saved"
    card = (tmp_path / rundir.ADAPTER / "README.md").read_text()
    assert TINY_MODEL_NAME in card and "None" not in card and f"| final_eval_loss | {metrics['final_eval_loss']:.4g} |" in card
    base, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    loaded = PeftModel.from_pretrained(base, str(tmp_path / rundir.ADAPTER))
    ids = torch.tensor([train[0]["input_ids"][:32]])
    result.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, result.model(ids).logits, atol=1e-5)


def test_eval_examples_are_sorted_longest_first(datasets):
    _, evals = datasets
    lengths = [len(ids) for ids in recipe.sort_by_length(evals)["input_ids"]]
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == len(evals)


@pytest.mark.slow  # trains or generates with the tiny model
def test_preview_generates_base_and_fine_tuned_rewrites(pairs, tmp_path, datasets):
    result = run(tmp_path, *datasets, max_steps=2, eval_steps=0, save_steps=0, learning_rate=5e-2)
    preview.prepare_for_generation(result.model, CPU)
    table, note = preview.before_after(result.model, result.tokenizer, pairs.head(3), max_new_tokens=8)
    assert list(table.columns) == ["ai", "base", "fine_tuned", "human"] and len(table) == 3 and note == ""
    assert result.tokenizer.padding_side == "right", "left padding is only for generation"
    assert (table["base"] != table["fine_tuned"]).any()
    assert "=== example 3 ===" in preview.format_before_after(table)


def test_train_metrics_reads_the_finishing_session():
    records = [
        {"step": 4, "loss": 2.0, "num_input_tokens_seen": 400, "train_runtime": 1.0, "train_tokens_per_second": 400.0},
        {"step": 4, "eval_loss": 2.2},
        {"step": 8, "loss": 1.5, "num_input_tokens_seen": 800, "train_runtime": 2.0, "train_tokens_per_second": 300.0},
        {"step": 8, "eval_loss": 1.9},
        {"step": 8, "train_runtime": 2.1, "train_loss": 1.7, "num_input_tokens_seen": 800, "epoch": 1.0},
    ]
    m = results.train_metrics(records, resumed_from_step=4)
    assert (m["first_eval_loss"], m["final_eval_loss"], m["best_eval_step"]) == (2.2, 1.9, 8)
    assert (m["tokens_per_second_whole_call"], m["train_runtime_s"], m["train_loss"]) == (300.0, 2.1, 1.7)
    assert m["global_step"] == 8 and m["resumed_from_step"] == 4


# ---------------------------------------------------------------- the demo run's report

@pytest.mark.slow
def test_demo_finetune_report(demo_run):
    """What a reader checks in the executed 02_finetune: it ran, learned, plotted, diagnosed, saved, quietly."""
    from peft import PeftModel

    nb = json.loads((demo_run / "02_finetune.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    stderr = [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"]
    assert not stderr, f"no progress bars or warnings in the report: {''.join(stderr[0]['text'])[:300] if stderr else ''}"
    text = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    assert "masked (prompt)" in text and "trained on (response + EOS)" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the loss curves are drawn"
    assert "[WARNING]" in text or "no warning signs" in text, "the diagnostics are printed"
    assert "fine-tuned   :" in text and "human (ref.) :" in text, "the before/after preview is printed"
    assert "tokens/s over the training steps" in text and "evaluation: " in text and "before/after preview: " in text

    metrics = json.loads((demo_run / rundir.TRAIN_METRICS).read_text())
    assert metrics["evaluations"] >= 3 and metrics["final_eval_loss"] < metrics["first_eval_loss"]
    assert metrics["backend"] == "hf"  # speed is measured by bench/demo_cpu.py, not asserted here
    for key in ("train_tokens_per_second", "first_step_s", "evaluation_s", "preview_s"):
        assert metrics[key] is not None and metrics[key] >= 0, key
    for name in (rundir.TRAIN_LOG, rundir.LOSS_CURVES, rundir.PREVIEW):
        assert (demo_run / name).is_file(), name
    assert "huggingface.co/None" not in (demo_run / rundir.CHECKPOINTS / "README.md").read_text()
    base, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    assert isinstance(PeftModel.from_pretrained(base, str(demo_run / rundir.ADAPTER)), PeftModel)
