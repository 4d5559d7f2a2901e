"""Training's failure cases (issue 16) and honest counts (issue 14), each on the tiny model.

A corrupt checkpoint never blocks resume; a diverged run stops, names the step, keeps the last
finite checkpoint and saves no adapter; the preview leaves out prompts longer than
max_seq_length; 4-bit weights are counted as the weights they stand for.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from ai2human import rundir
from ai2human.data.sample import generate_pairs
from ai2human.models.tiny import TINY_MODEL_NAME
from ai2human.train import checkpoints, preview, recipe, results, tokenizing
from ai2human.train.guards import TrainingDiverged
from test_training import CPU, TRAIN_LEN, settings

pytestmark = pytest.mark.slow  # every case trains the tiny model


@pytest.fixture(scope="module")
def datasets():
    rows = generate_pairs(30, seed=5)
    pairs = pd.DataFrame({"human": [r["human"] for r in rows], "ai": [r["LLM"] for r in rows]})
    tokenizer = recipe.load_model_with_lora(settings("/tmp/unused"))[1]
    train, _ = tokenizing.tokenize_pairs(pairs.head(20), tokenizer, TRAIN_LEN, "truncate")
    evals, _ = tokenizing.tokenize_pairs(pairs.tail(4), tokenizer, TRAIN_LEN, "truncate", split="eval")
    return train, evals


def run(run_dir, train, evals, notes=None, **over):
    echo = notes.append if notes is not None else (lambda line: None)
    return recipe.run_training(settings(run_dir, **over), train, evals, echo=echo)


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---------------------------------------------------------------- corrupt checkpoints

def test_a_corrupt_checkpoint_never_blocks_resume(tmp_path, datasets):
    train, evals = datasets
    run(tmp_path, train, evals, max_steps=6, save_steps=2, eval_steps=0)
    folder = tmp_path / rundir.CHECKPOINTS
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    truncate(folder / "checkpoint-6" / "adapter_model.safetensors")  # a disk that filled mid-save
    truncate(folder / "checkpoint-4" / "optimizer.pt", keep=0.9)

    assert checkpoints.checkpoint_problem(folder / "checkpoint-6").startswith("adapter_model.safetensors is truncated")
    assert checkpoints.checkpoint_problem(folder / "checkpoint-4").startswith("optimizer.pt is damaged")
    path, note = checkpoints.find_checkpoint(tmp_path, "auto")
    assert path.endswith("checkpoint-2")
    assert "checkpoint-6: adapter_model.safetensors is truncated" in note and "checkpoint-4: optimizer.pt is damaged" in note
    with pytest.raises(Exception, match="not an intact checkpoint.*truncated"):
        checkpoints.find_checkpoint(tmp_path, "checkpoints/checkpoint-6")

    # resume = auto trains on from checkpoint-2 to the end, and the run completes
    notes: list[str] = []
    result = run(tmp_path, train, evals, notes, max_steps=6, save_steps=2, eval_steps=0)
    assert result.resume_from.endswith("checkpoint-2") and result.train_output.global_step == 6
    assert any("resuming from checkpoint-2" in n and "checkpoint-6" in n for n in notes)
    assert not checkpoints.checkpoint_problem(folder / "checkpoint-6"), "the damaged one is written again"
    assert (tmp_path / rundir.ADAPTER / "adapter_model.safetensors").is_file()


def test_a_run_with_only_corrupt_checkpoints_starts_over(tmp_path, datasets):
    train, evals = datasets
    run(tmp_path, train, evals, max_steps=2, save_steps=2, eval_steps=0)
    (tmp_path / rundir.CHECKPOINTS / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"\x10")
    path, note = checkpoints.find_checkpoint(tmp_path, "auto")
    assert path is None and "starting from scratch" in note and "checkpoint-2: adapter_model.safetensors is truncated" in note


# ---------------------------------------------------------------- divergence

def test_an_infinite_learning_rate_fails_the_run_without_an_adapter(tmp_path, datasets):
    train, evals = datasets
    with pytest.raises(TrainingDiverged, match=r"training stopped at step \d+: ") as err:
        run(tmp_path, train, evals, learning_rate=float("inf"), max_steps=4, save_steps=2, eval_steps=2)
    assert "no finite checkpoint" in str(err.value)
    assert not (tmp_path / rundir.ADAPTER).exists() and not (tmp_path / rundir.TRAIN_METRICS).exists()
    assert not list((tmp_path / rundir.CHECKPOINTS).glob("checkpoint-*")), "no NaN checkpoint is written"


def poison_at(step):
    """Turns the LoRA weights to NaN as ``step`` begins, as a blown-up update would."""
    from transformers import TrainerCallback

    class Poison(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step + 1 == step:
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if "lora_B" in name:
                            param.fill_(float("nan"))

    return lambda built: built.add_callback(Poison())


def test_a_nan_loss_stops_training_and_keeps_the_last_finite_checkpoint(tmp_path, datasets):
    train, evals = datasets
    with pytest.raises(TrainingDiverged, match="training stopped at step 3: loss is nan") as err:
        recipe.run_training(settings(tmp_path, max_steps=6, save_steps=2, eval_steps=0), train, evals,
                            trainer_hooks=(poison_at(3),), echo=lambda line: None)
    assert "checkpoint-2, is kept" in str(err.value)
    assert [p.name for p in (tmp_path / rundir.CHECKPOINTS).glob("checkpoint-*")] == ["checkpoint-2"]
    assert not (tmp_path / rundir.ADAPTER).exists()
    from safetensors.torch import load_file

    kept = load_file(str(tmp_path / rundir.CHECKPOINTS / "checkpoint-2" / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in kept.values())


# ---------------------------------------------------------------- the preview

def test_preview_leaves_out_prompts_longer_than_max_seq_length(tmp_path, datasets):
    result = run(tmp_path, *datasets, max_steps=1, eval_steps=0, save_steps=0)
    assert (tmp_path / rundir.ADAPTER / "adapter_model.safetensors").is_file(), "saved before any generation"
    pairs = pd.DataFrame({"ai": ["A short text.", "word " * 3000, "Another short one."],
                          "human": ["a", "b", "c"]})
    preview.prepare_for_generation(result.model, CPU)
    table, note = preview.before_after(result.model, result.tokenizer, pairs, max_new_tokens=4, max_seq_length=TRAIN_LEN)
    assert table["human"].tolist() == ["a", "c"]
    assert note.startswith("1 of 3 preview input(s) left out") and f"max_seq_length = {TRAIN_LEN}" in note


# ---------------------------------------------------------------- parameter counts

class Params4bit(torch.nn.Parameter):
    """What bitsandbytes holds for a 4-bit weight: two weights per uint8 element, the shape in quant_state."""


def packed(out_features, in_features, with_shape=True):
    param = Params4bit(torch.zeros(out_features * in_features // 2, 1, dtype=torch.uint8), requires_grad=False)
    param.quant_state = SimpleNamespace(shape=torch.Size([out_features, in_features])) if with_shape else object()
    return param


def test_4bit_weights_count_as_the_weights_they_hold():
    layer = torch.nn.Module()
    layer.weight = packed(64, 32)
    layer.other = packed(16, 8, with_shape=False)  # no shape recorded: twice the packed bytes
    layer.lora_A = torch.nn.Parameter(torch.zeros(4, 32))
    layer.norm = torch.nn.Parameter(torch.ones(32), requires_grad=False)
    assert results.real_numel(layer.weight) == 64 * 32 and layer.weight.numel() == 64 * 32 // 2
    assert results.count_parameters(layer) == (4 * 32, 64 * 32 + 16 * 8 + 4 * 32 + 32)


def test_tiny_model_counts_match_its_shape(tmp_path):
    model, _ = recipe.load_model_with_lora(settings(tmp_path))
    config = model.config
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (getattr(config, "head_dim", None) or h // config.num_attention_heads)
    linears = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
               "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    lora = layers * sum(8 * (a + b) for a, b in linears.values())  # r = 8 on every linear layer
    trainable, total = results.count_parameters(model)
    assert trainable == lora
    assert total == sum(p.numel() for p in model.parameters())  # nothing packed on a CPU


def test_metrics_carry_the_share_on_real_counts(tmp_path, datasets):
    run(tmp_path, *datasets, max_steps=1, eval_steps=0, save_steps=0)
    metrics = json.loads((tmp_path / rundir.TRAIN_METRICS).read_text())
    assert metrics["trainable_share"] == pytest.approx(metrics["trainable_params"] / metrics["total_params"], abs=1e-6)
    assert metrics["model_name"] == TINY_MODEL_NAME


# ---------------------------------------------------------------- a quiet resume

def test_resuming_a_fractional_schedule_does_not_warn(tmp_path, datasets):
    import logging

    from test_training import Interrupt, interrupt_at

    class Keep(logging.Handler):  # transformers' own handler writes to the stderr it found at import
        def __init__(self):
            super().__init__()
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    train, evals = datasets
    s = settings(tmp_path, max_steps=4, eval_steps=0.5, save_steps=0.5)
    with pytest.raises(Interrupt):
        recipe.run_training(s, train, evals, trainer_hooks=(interrupt_at(3),), echo=lambda line: None)
    keep, logger = Keep(), logging.getLogger("transformers.trainer_utils")
    logger.addHandler(keep)
    try:
        result = recipe.run_training(s, train, evals, echo=lambda line: None)
    finally:
        logger.removeHandler(keep)
    assert result.resume_from.endswith("checkpoint-2") and result.train_output.global_step == 4
    assert not [m for m in keep.messages if "(from trainer_state.json)" in m]
