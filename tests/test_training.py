"""training: response-only labels, overlong handling, SFT config rules, resume, adapter, preview.

Training tests use the tiny model on a few short synthetic pairs: a handful of optimizer steps
take a second or two on a CPU.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from ai2human import rundir
from ai2human.train import sft as T
from ai2human.errors import UserError
from ai2human.models.hardware import BackendChoice
from ai2human.models.loading import DEFAULT_TARGET_MODULES, add_lora, load_model
from ai2human.data.prompts import format_prompt
from ai2human.data.sample import generate_pairs
from ai2human.models.tiny import TINY_MODEL_NAME

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
    train, _ = T.tokenize_pairs(pairs.head(24), tokenizer, TRAIN_LEN, "truncate")
    evals, _ = T.tokenize_pairs(pairs.tail(6), tokenizer, TRAIN_LEN, "truncate", split="eval")
    return train, evals


def fresh_model():
    model, tokenizer = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    model = add_lora(model, CPU, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=list(DEFAULT_TARGET_MODULES),
                     gradient_checkpointing="false", seed=3407)
    return model, tokenizer


def sft_config(run_dir, **over):
    kwargs = dict(
        run_dir=run_dir, choice=CPU, max_seq_length=TRAIN_LEN, learning_rate=5e-3,
        per_device_train_batch_size=2, gradient_accumulation_steps=1, warmup_steps=1, num_train_epochs=1.0,
        max_steps=8, optim="adamw_torch", lr_scheduler_type="linear", weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=1, eval_steps=4, save_steps=4, save_total_limit=0, early_stopping_patience=0, seed=3407,
        gradient_checkpointing="false", packing=False, padding_free=False, report_to="none", has_eval=True,
    )
    kwargs.update(over)
    return T.build_sft_config(**kwargs)


def trainer_for(run_dir, train, evals, model=None, tokenizer=None, **over):
    if model is None:
        model, tokenizer = fresh_model()
    return T.build_trainer(model=model, tokenizer=tokenizer, args=sft_config(run_dir, **over), train_dataset=train,
                           eval_dataset=evals, choice=CPU, log_path=run_dir / rundir.TRAIN_LOG)


# ---------------------------------------------------------------- tokenisation

def test_prompt_is_masked_and_response_with_eos_is_trained(pairs, tokenizer):
    ai, human = pairs["ai"][0], pairs["human"][0]
    ex = T.tokenize_example(ai, human, tokenizer)
    masked = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == T.IGNORE_INDEX]
    trained = [lab for lab in ex["labels"] if lab != T.IGNORE_INDEX]
    assert tokenizer.decode(masked) == format_prompt(ai)
    assert tokenizer.decode(trained) == human + tokenizer.eos_token
    assert trained[-1] == tokenizer.eos_token_id  # the model learns to stop
    assert ex["attention_mask"] == [1] * len(ex["input_ids"])
    assert T.label_counts(ex) == (len(masked), len(trained))


def test_slow_tokenizers_mask_the_same_tokens(pairs, tokenizer):
    class Slow:  # no offset mapping: the prompt is tokenised on its own instead
        is_fast = False
        eos_token = tokenizer.eos_token

        def __call__(self, texts, **kwargs):
            assert "return_offsets_mapping" not in kwargs
            return tokenizer(texts)

    ai, human = pairs["ai"].tolist()[:3], pairs["human"].tolist()[:3]
    assert T.tokenize_examples(ai, human, Slow()) == T.tokenize_examples(ai, human, tokenizer)


def test_train_on_inputs_trains_every_token(pairs, tokenizer):
    ex = T.tokenize_example(pairs["ai"][0], pairs["human"][0], tokenizer, train_on_inputs=True)
    assert ex["labels"] == ex["input_ids"]


def test_overlong_examples_are_dropped_or_truncated(pairs, tokenizer):
    dropped, report = T.tokenize_pairs(pairs, tokenizer, MAX_LEN, "drop")
    over = sum(n > MAX_LEN for n in report.lengths)
    assert over > 0, "the fixture needs some long examples"
    assert (report.over_max, report.dropped, report.kept, len(dropped)) == (over, over, len(pairs) - over, len(pairs) - over)
    assert f"{over} (" in report.summary() and "dropped" in report.summary()
    assert max(len(ids) for ids in dropped["input_ids"]) <= MAX_LEN

    cut, report = T.tokenize_pairs(pairs, tokenizer, MAX_LEN, "truncate")
    assert report.truncated + report.dropped == over and report.kept == len(cut)
    assert max(len(ids) for ids in cut["input_ids"]) == MAX_LEN
    assert all(any(lab != T.IGNORE_INDEX for lab in labels) for labels in cut["labels"])
    assert report.to_dict()["share_over"] == pytest.approx(over / len(pairs), abs=1e-4)


def test_truncation_that_leaves_no_response_drops_the_example(pairs, tokenizer):
    prompt_len = len(tokenizer(format_prompt(pairs["ai"][0]))["input_ids"])
    _, report = T.tokenize_pairs(pairs.head(1), tokenizer, 10_000)
    with pytest.raises(UserError, match="longer than max_seq_length"):
        T.tokenize_pairs(pairs.head(1), tokenizer, prompt_len - 1, "truncate")
    with pytest.raises(UserError, match="overlong: truncate"):
        T.tokenize_pairs(pairs.head(1), tokenizer, 16, "drop")
    with pytest.raises(UserError, match="overlong"):
        T.tokenize_pairs(pairs, tokenizer, MAX_LEN, "cut")


def test_labels_html_shows_both_parts_escaped(tokenizer):
    ex = T.tokenize_example("AI <b>text</b>", "Human & text", tokenizer)
    html = T.labels_html(ex, tokenizer)
    assert "line-through" in html and "&lt;b&gt;" in html and "&amp;" in html and "<b>" not in html
    body = html.split("<pre", 1)[1]  # after the legend
    assert body.index("Below is an instruction") < body.index("color:#060") < body.index("Human &amp; text")


def test_eda_warning_when_max_seq_length_cuts_more_than_10_percent(tmp_path):
    summary = {"tokens": {"tokenizer": "tiny", "max_seq_length": 2048,
                          "example": {"lengths": [100] * 8 + [3000] * 2, "recommended_max_seq_length": 4096}}}
    path = tmp_path / "eda_summary.json"
    path.write_text(json.dumps(summary))
    assert "20.0%" in T.eda_overlong_warning(path, 2048)
    assert T.eda_overlong_warning(path, 4096) == ""
    assert T.eda_overlong_warning(tmp_path / "missing.json", 2048) == ""
    path.write_text('{"tokens": {}}')
    assert T.eda_overlong_warning(path, 2048) == ""  # a summary of another layout is not an error


# ---------------------------------------------------------------- options and config

def test_bitsandbytes_optimizers_fall_back_on_cpu():
    assert T.resolve_optim("adamw_torch", CPU) == ("adamw_torch", "")
    optim, note = T.resolve_optim("paged_adamw_32bit", CPU)
    assert optim == "adamw_torch" and "CUDA" in note


def test_padding_free_on_hf_without_flash_attention_is_allowed_with_a_note():
    model, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    assert T.check_batching(CPU, model, packing=False, padding_free=False) == []
    notes = T.check_batching(CPU, model, packing=False, padding_free=True)
    assert len(notes) == 1 and "no flash-attention" in notes[0]
    unsloth = BackendChoice("unsloth", "float16", True, "cuda")
    assert "Unsloth" in T.check_batching(unsloth, model, packing=True, padding_free=False)[0]


def test_sft_config_follows_the_parameters(tmp_path):
    args = sft_config(tmp_path, max_steps=0, num_train_epochs=2.0, eval_steps=0.2, save_steps=0.5)
    assert args.max_steps == -1 and args.num_train_epochs == 2.0
    assert args.output_dir == str(tmp_path / "checkpoints")
    assert (args.eval_strategy, args.eval_steps, args.save_steps) == ("steps", 0.2, 0.5)
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing
    assert args.max_length == TRAIN_LEN and args.logging_first_step
    assert sft_config(tmp_path, has_eval=False).eval_strategy == "no"
    assert sft_config(tmp_path, eval_steps=0).eval_strategy == "no"
    assert sft_config(tmp_path, save_steps=0).save_strategy == "no"
    # TRL cannot cut a flattened batch, so padding-free without packing leaves the cut to us
    assert sft_config(tmp_path, padding_free=True).max_length is None
    assert args.ddp_find_unused_parameters is False  # LoRA uses every trainable weight: DDP need not search
    assert args.train_sampling_strategy == "random"  # the reference runs' order unless asked otherwise
    assert sft_config(tmp_path, train_sampling="group_by_length").train_sampling_strategy == "group_by_length"


def test_sft_config_explains_impossible_combinations(tmp_path):
    with pytest.raises(UserError, match="num_train_epochs"):
        sft_config(tmp_path, max_steps=0, num_train_epochs=0.0)
    with pytest.raises(UserError, match="train_sampling must be one of random, group_by_length"):
        sft_config(tmp_path, train_sampling="by_length")
    with pytest.raises(UserError, match="needs evaluation"):
        sft_config(tmp_path, early_stopping_patience=2, has_eval=False)
    with pytest.raises(UserError, match="save_steps equal to eval_steps"):
        sft_config(tmp_path, early_stopping_patience=2, eval_steps=4, save_steps=2)
    args = sft_config(tmp_path, early_stopping_patience=2)
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"


# ---------------------------------------------------------------- checkpoints

def fake_checkpoint(folder, step, complete=True):
    path = folder / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_find_checkpoint_auto_takes_the_newest_complete_one(tmp_path):
    assert T.find_checkpoint(tmp_path, "auto")[0] is None
    fake_checkpoint(tmp_path, 5)
    newest = fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 15, complete=False)  # a session killed while saving
    path, note = T.find_checkpoint(tmp_path, "auto")
    assert path == str(newest) and "checkpoint-10" in note and "checkpoint-15" in note
    assert T.checkpoint_step(path) == 10 and T.checkpoint_step(None) == 0


def test_find_checkpoint_by_path_and_never(tmp_path):
    five = fake_checkpoint(tmp_path, 5)
    assert T.find_checkpoint(tmp_path, "checkpoints/checkpoint-5")[0] == str(five)
    with pytest.raises(UserError, match="not a complete checkpoint"):
        T.find_checkpoint(tmp_path, "checkpoints/checkpoint-99")
    path, note = T.find_checkpoint(tmp_path, "never")
    assert path is None and "deleted 1" in note and not five.exists()


def test_log_callback_writes_on_the_first_process_only(tmp_path):
    from transformers import TrainerState

    log = T.log_callback(tmp_path / rundir.TRAIN_LOG)
    other = TrainerState(is_world_process_zero=False, global_step=1)
    log.on_train_begin(None, other, None)
    log.on_log(None, other, None, logs={"loss": 1.0})
    assert not (tmp_path / rundir.TRAIN_LOG).exists(), "a second DDP process writes nothing"
    first = TrainerState(global_step=1)
    log.on_train_begin(None, first, None)
    log.on_log(None, first, None, logs={"loss": 1.0})
    assert [r["loss"] for r in T.read_log_records(tmp_path / rundir.TRAIN_LOG)] == [1.0]


# ---------------------------------------------------------------- training

class Interrupt(Exception):
    """Stands in for a Kaggle session hitting its time limit."""


def interrupt_at(step):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt

    return Stop()


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, datasets):
    train, evals = datasets

    trainer = trainer_for(tmp_path, train, evals)
    trainer.add_callback(interrupt_at(6))  # after checkpoint-4, before checkpoint-8
    with pytest.raises(Interrupt):
        trainer.train()
    # on_step_end runs before the step is logged, so the log stops at step 5
    assert max(r["step"] for r in T.read_log_records(tmp_path / rundir.TRAIN_LOG)) == 5

    resume_from, note = T.find_checkpoint(tmp_path, "auto")  # a new session: new model, same folder
    assert resume_from.endswith("checkpoint-4") and "step 4" in note
    output = trainer_for(tmp_path, train, evals).train(resume_from_checkpoint=resume_from)
    assert output.global_step == 8

    records = T.read_log_records(tmp_path / rundir.TRAIN_LOG)
    loss_steps = [r["step"] for r in records if "loss" in r]
    assert loss_steps == list(range(1, 9)), "each step logged once: records past the checkpoint were dropped"
    assert [r["step"] for r in records if "eval_loss" in r] == [4, 8]

    # re-running after the end loads the last checkpoint instead of training one step past it
    last, _ = T.find_checkpoint(tmp_path, "auto")
    assert last.endswith("checkpoint-8")
    model, tok = fresh_model()
    again = T.train(trainer_for(tmp_path, train, evals, model, tok), last)
    assert again.global_step == 8 and again.metrics["already_finished"]
    from safetensors.torch import load_file

    saved = load_file(f"{last}/adapter_model.safetensors")
    name = next(k for k in saved if "lora_B" in k)
    live = dict(model.named_parameters())[name.replace(".weight", ".default.weight")]
    assert torch.equal(live.detach(), saved[name])

    # the same run without interruption ends at the same step with the same loss
    straight = tmp_path / "straight"
    trainer_for(straight, train, evals).train()
    straight_loss = [r["loss"] for r in T.read_log_records(straight / rundir.TRAIN_LOG) if "loss" in r]
    assert [r["loss"] for r in records if "loss" in r][-1] == pytest.approx(straight_loss[-1], rel=1e-3)


def test_training_lowers_eval_loss_and_saves_a_loadable_adapter(tmp_path, datasets):
    from peft import PeftModel

    train, evals = datasets
    model, tok = fresh_model()
    trainer = trainer_for(tmp_path, train, evals, model, tok, max_steps=12, eval_steps=6, save_steps=0)
    output = trainer.train()
    records = T.read_log_records(tmp_path / rundir.TRAIN_LOG)
    metrics = T.train_metrics(records, output, backend="hf")
    assert metrics["final_eval_loss"] < metrics["first_eval_loss"]
    assert metrics["global_step"] == 12 and metrics["evaluations"] == 2 and metrics["backend"] == "hf"
    assert metrics["train_tokens_per_second"] > 0
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").glob("checkpoint-*"))

    files = T.save_adapter(model, tok, tmp_path / rundir.ADAPTER)
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files and "tokenizer.json" in files
    assert not any(f.startswith("model") for f in files), "no merged model is saved"
    base, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    loaded = PeftModel.from_pretrained(base, str(tmp_path / rundir.ADAPTER))
    ids = torch.tensor([train[0]["input_ids"][:32]])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)


def test_preview_generates_base_and_fine_tuned_rewrites(pairs):
    model, tokenizer = fresh_model()
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    T.prepare_for_generation(model, CPU)
    table = T.before_after(model, tokenizer, pairs.head(3), max_new_tokens=8)
    assert list(table.columns) == ["ai", "base", "fine_tuned", "human"] and len(table) == 3
    assert tokenizer.padding_side == "right", "left padding is only for generation"
    assert (table["base"] != table["fine_tuned"]).any()
    assert "=== example 3 ===" in T.format_before_after(table)


def test_train_metrics_reads_the_finishing_session():
    records = [
        {"step": 4, "loss": 2.0, "num_input_tokens_seen": 400, "train_runtime": 1.0, "train_tokens_per_second": 400.0},
        {"step": 4, "eval_loss": 2.2},
        {"step": 8, "loss": 1.5, "num_input_tokens_seen": 800, "train_runtime": 2.0, "train_tokens_per_second": 300.0},
        {"step": 8, "eval_loss": 1.9},
        {"step": 8, "train_runtime": 2.1, "train_loss": 1.7, "num_input_tokens_seen": 800, "epoch": 1.0},
    ]
    m = T.train_metrics(records, resumed_from_step=4)
    assert (m["first_eval_loss"], m["final_eval_loss"], m["best_eval_step"]) == (2.2, 1.9, 8)
    assert (m["train_tokens_per_second"], m["train_runtime_s"], m["train_loss"]) == (300.0, 2.1, 1.7)
    assert m["global_step"] == 8 and m["resumed_from_step"] == 4


# ---------------------------------------------------------------- the demo run's report

@pytest.mark.slow
def test_demo_finetune_report(demo_run):
    """What a reader checks in the executed 02_finetune: it ran, learned, plotted, diagnosed, saved."""
    from peft import PeftModel

    nb = json.loads((demo_run / "02_finetune.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    assert "masked (prompt)" in text and "trained on (response + EOS)" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the loss curves are drawn"
    assert "[WARNING]" in text or "no warning signs" in text, "the diagnostics are printed"
    assert "fine-tuned   :" in text and "human (ref.) :" in text, "the before/after preview is printed"

    metrics = json.loads((demo_run / rundir.TRAIN_METRICS).read_text())
    assert metrics["evaluations"] >= 3 and metrics["final_eval_loss"] < metrics["first_eval_loss"]
    assert metrics["backend"] == "hf"  # speed is measured by bench/demo_cpu.py, not asserted here
    for name in (rundir.TRAIN_LOG, "loss_curves.png", rundir.PREVIEW):
        assert (demo_run / name).is_file(), name
    base, _ = load_model(TINY_MODEL_NAME, CPU, MAX_LEN)
    assert isinstance(PeftModel.from_pretrained(base, str(demo_run / rundir.ADAPTER)), PeftModel)
