"""The training benchmark's logic on a CPU: lengths, synthetic rows, FLOP counts, measuring, the
report, the orchestration's timeouts, and one end-to-end run of the tiny shape through the
transformers backend. GPU numbers are never asserted here."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist

import pytest
import torch

from ai2human.bench import cli as bench
from ai2human.bench import data as bench_data
from ai2human.bench import flops as bench_flops
from ai2human.bench import groups as bench_groups
from ai2human.bench import model as bench_model
from ai2human.bench import report as bench_report
from ai2human.bench.cases import BATCHING, Case, case_settings, parse_case
from ai2human.bench.meter import loss_summary, micro_batch_stats, summarize

REPO = Path(__file__).resolve().parents[1]
QWEN7B = bench_model.SHAPES["qwen2.5-7b"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ---------------------------------------------------------------- lengths and rows

def test_lognormal_sigma_puts_the_share_above_the_threshold():
    sigma = bench_data.lognormal_sigma(1000, 2048, 0.12)
    above = 1 - NormalDist(math.log(1000), sigma).cdf(math.log(2048))
    assert above == pytest.approx(0.12, abs=1e-9)


def test_default_lengths_follow_the_original_eda():
    """Median ~1000 and 12% above 2048 before dropping; a data set loses those, like the notebook."""
    epoch = bench_data.sample_lengths("epoch", 20000, 2048, seed=1)
    assert epoch.drawn == 20000
    assert epoch.dropped / epoch.drawn == pytest.approx(0.12, abs=0.01)
    assert max(epoch.lengths) <= 2048 and min(epoch.lengths) >= bench_data.MIN_LENGTH
    # The kept examples' median sits below 1000: the top 12% were removed.
    assert 850 < epoch.summary()["median"] < 1000


def test_real_regime_keeps_exactly_the_rows_asked_and_is_deterministic():
    a = bench_data.sample_lengths("real", 160, 2048, seed=5)
    b = bench_data.sample_lengths("real", 160, 2048, seed=5)
    c = bench_data.sample_lengths("real", 160, 2048, seed=6)
    assert len(a.lengths) == 160 and a.lengths == b.lengths and a.lengths != c.lengths
    assert a.drawn == 160 + a.dropped and max(a.lengths) <= 2048


def test_lengths_scale_with_max_seq_length_and_full_rows_are_full():
    small = bench_data.sample_lengths("epoch", 5000, 256, seed=2).summary()
    assert 100 < small["median"] < 125
    full = bench_data.sample_lengths("full", 24, 2048)
    assert full.lengths == [2048] * 24 and full.dropped == 0


def test_lengths_from_an_eda_summary(tmp_path):
    path = tmp_path / "eda_summary.json"
    path.write_text(json.dumps({"tokens": {"example": {"p50": 700, "lengths": [300, 700, 900, 3000]}}}))
    pool = bench_data.eda_lengths(path)
    sample = bench_data.sample_lengths("real", 40, 2048, source_lengths=pool, source_name=str(path))
    assert set(sample.lengths) <= {300, 700, 900} and sample.dropped > 0 and sample.source == str(path)
    (tmp_path / "bad.json").write_text(json.dumps({"tokens": {}}))
    with pytest.raises(ValueError, match="tokens.example.lengths"):
        bench_data.eda_lengths(tmp_path / "bad.json")


def test_synthetic_rows_have_tokenize_pairs_format():
    rows = bench_data.synthetic_rows([20, 31], (1, 50), eos_id=0, prompt_share=0.5, seed=3, exclude=(7,))
    assert set(rows) == {"input_ids", "attention_mask", "labels"}
    for ids, mask, labels in zip(rows["input_ids"], rows["attention_mask"], rows["labels"]):
        n_prompt = labels.count(-100)
        assert ids[-1] == 0 and 7 not in ids and 0 not in ids[:-1]
        assert mask == [1] * len(ids)
        assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
        assert n_prompt == round(0.5 * len(ids))


def test_synthetic_rows_match_the_notebooks_tokenised_examples():
    """Same keys and value types as tokenizing.tokenize_example, so the trainer sees what the notebook gives it."""
    from ai2human.models.loading import load_tokenizer
    from ai2human.models.tiny import TINY_MODEL_NAME
    from ai2human.train.tokenizing import tokenize_example

    real = tokenize_example("an AI text", "a human text", load_tokenizer(TINY_MODEL_NAME))
    fake = bench_data.synthetic_rows([len(real["input_ids"])], (1, 50), eos_id=0)
    assert set(fake) == set(real)
    assert all(isinstance(fake[k][0][0], int) for k in real)


# ---------------------------------------------------------------- FLOP counts

def test_flop_counts_for_qwen25_7b():
    c = bench_flops.flop_counts(QWEN7B, 16, TARGETS)
    per_layer = 3584 * (3584 * 2 + 512 * 2) + 3 * 3584 * 18944
    assert c["matmul_params"] == 28 * per_layer + 3584 * 152064 == 7_070_285_824
    assert c["linear_per_token"] == 4 * c["matmul_params"]
    assert c["lora_per_token"] == 6 * 28 * 16 * (7168 + 4096 + 4096 + 7168 + 3 * 22528)
    assert c["attention_per_pair"] == 12 * 28 * 3584
    # The rule of thumb: about 4 x matmul parameters per token dominates.
    full_row = bench_flops.training_flops(c, 2048, bench_flops.causal_pairs([2048]))[0] / 2048
    assert 29e9 < full_row < 31e9


def test_flop_counts_match_a_real_model_and_its_lora():
    """The shape formula counts exactly the linear weights of a built Qwen2 and the LoRA add_lora makes."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from ai2human.models.hardware import BackendChoice
    from ai2human.models.loading import add_lora
    from ai2human.train.results import count_parameters

    shape = bench_model.SHAPES["tiny"]
    model = Qwen2ForCausalLM(Qwen2Config(**shape))
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    counts = bench_flops.flop_counts(shape, 8, TARGETS)
    assert counts["matmul_params"] == linear
    peft = add_lora(model, BackendChoice("hf", "float32", False, "cpu"), r=8, lora_alpha=16, lora_dropout=0.0,
                    target_modules=TARGETS, gradient_checkpointing="false", seed=0)
    assert counts["lora_per_token"] == 6 * count_parameters(peft)[0]


def test_training_flops_and_pairs():
    assert bench_flops.causal_pairs([1, 2, 3]) == 1 + 3 + 6
    c = {"linear_per_token": 10, "lora_per_token": 2, "attention_per_pair": 3, "recompute_per_token": 5, "recompute_per_pair": 1}
    assert bench_flops.training_flops(c, tokens=4, pairs=10, checkpointing=False) == (78.0, 78.0)
    assert bench_flops.training_flops(c, tokens=4, pairs=10) == (78.0, 78.0 + 20 + 10)
    with pytest.raises(ValueError, match="not linear layers"):
        bench_flops.flop_counts(QWEN7B, 16, ["qkv"])


def test_datasheet_peaks():
    assert bench_model.datasheet_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert bench_model.datasheet_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench_model.datasheet_tflops("Tesla T4") == 65.0
    assert bench_model.datasheet_tflops("some card") is None


# ---------------------------------------------------------------- cases and the notebook's arguments

def test_parse_case():
    assert parse_case("full") == Case("full", "full", "pad", 2, 4)
    case = parse_case("real-rebalance-b4")
    assert (case.regime, case.batching, case.batch_size, case.grad_accum) == ("real", "rebalance", 4, 2)
    assert case.sampling == "batch_rebalance" and not case.packing and not case.padding_free
    assert parse_case("real-packing").packing and parse_case("epoch-padfree").padding_free
    for bad in ("real", "real-sorted", "big-pad", "real-pad-b3", "real-pad-x4"):
        with pytest.raises(ValueError):
            parse_case(bad)
    assert set(BATCHING) == {"pad", "padfree", "packing", "grouped", "rebalance"}


def test_a_case_trains_with_the_params_files_settings_changed_only_where_it_must(tmp_path):
    from ai2human.models.hardware import BackendChoice
    from ai2human.runner.params import resolve_run
    from ai2human.train.settings import TrainSettings

    params = resolve_run(REPO / "params" / "v5.yaml").params
    base = TrainSettings.from_params(params, run_dir=str(tmp_path), choice=BackendChoice("hf", "float32", False, "cpu"),
                                     model_name="/models/random", tokenizer_name="")
    s = case_settings(base, parse_case("real-rebalance-b4"), steps=10, run_dir=tmp_path / "case")
    # v5's settings, unchanged where they matter for speed and memory.
    for key in ("max_seq_length", "learning_rate", "optim", "gradient_checkpointing", "seed", "weight_decay",
                "max_grad_norm", "warmup_steps", "lora_r", "lora_alpha", "lora_target_modules"):
        assert getattr(s, key) == params[key], key
    assert (params["per_device_train_batch_size"], params["gradient_accumulation_steps"], params["max_seq_length"]) == (2, 4, 2048)
    assert (s.per_device_train_batch_size, s.gradient_accumulation_steps, s.train_sampling) == (4, 2, "batch_rebalance")
    assert (s.eval_steps, s.save_steps, s.report_to, s.logging_steps, s.max_steps) == (0, 0, "none", 1, 0)
    assert case_settings(base, parse_case("full"), steps=10, run_dir=tmp_path).max_steps == 10
    assert s.run_dir == str(tmp_path / "case") and s.model_name == "/models/random"


# ---------------------------------------------------------------- measuring

def test_micro_batch_stats_padded_packed_and_full():
    ids = torch.ones(2, 5, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    labels = torch.tensor([[-100, 5, 5, -100, -100], [-100, -100, 5, 5, 5]])
    s = micro_batch_stats(torch, ids, attention_mask=mask, labels=labels)
    assert (s["padded"], int(s["real"]), int(s["examples"]), int(s["pairs"]), int(s["trained"])) == (10, 8, 2, 6 + 15, 5)
    flat = torch.ones(1, 8, dtype=torch.long)
    pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4]])
    s = micro_batch_stats(torch, flat, position_ids=pos)
    assert (s["padded"], int(s["real"]), int(s["examples"]), int(s["pairs"])) == (8, 8, 2, 6 + 15)
    s = micro_batch_stats(torch, flat, position_ids=pos, packed_seq_lengths=torch.tensor([3, 5], dtype=torch.int32))
    assert (int(s["examples"]), int(s["pairs"])) == (2, 6 + 15)
    s = micro_batch_stats(torch, ids)
    assert (int(s["real"]), int(s["pairs"]), s["trained"]) == (10, 30, None)


def test_summarize_leaves_out_the_first_steps():
    counts = bench_flops.flop_counts(bench_model.SHAPES["tiny"], 8, TARGETS)
    totals = [{"padded": 100, "real": 80, "trained": 40, "pairs": 1000, "examples": 8, "microbatches": 4,
               "max_examples_per_microbatch": 2}] * 4
    ends = [10.0, 11.0, 13.0, 15.0]  # first step 10 s (compiling), then 1, 2, 2
    peaks = {"measured": {"bfloat16": 100.0}, "datasheet": 200.0}
    s = summarize(totals, 0.0, ends, 2, counts, True, peaks, "bfloat16")
    assert s["first_step_s"] == 10 and s["measured_steps"] == 2 and s["s_per_step"] == 2.0
    assert s["tokens_per_s"] == 50 and s["nonpad_tokens_per_s"] == 40 and s["padding_share"] == 0.2
    model_flops = bench_flops.training_flops(counts, 80, 1000)[0]
    assert s["model_tflops_per_s"] == round(model_flops / 2 / 1e12, 1)
    assert s["mfu_datasheet_peak"] == pytest.approx(s["mfu_measured_peak"] / 2, rel=1e-2, abs=1e-4)
    assert s["trained_tokens"] == 160 and s["examples"] == 32
    one = summarize(totals[:1], 0.0, [3.0], 2, counts, True, peaks, "float32")
    assert one["measured_steps"] == 1 and one["mfu_measured_peak"] is None


def test_loss_summary_weights_steps_by_trained_tokens():
    records = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 4.0}, {"step": 2, "train_runtime": 1.0}]
    totals = [{"trained": 300}, {"trained": 100}]
    s = loss_summary(records, totals)
    assert s["loss_token_mean"] == 2.5 and s["losses"] == [2.0, 4.0]


# ---------------------------------------------------------------- results and report

def _run(case, backend="unsloth", precision="native", **over):
    run = {"case": case, "backend": backend, "precision": precision, "status": "ok", "regime": case.split("-")[0],
           "batching": (case.split("-") + ["pad"])[1], "batch_size": 2, "grad_accum": 4, "s_per_step": 1.5,
           "tokens_per_s": 11000.0, "nonpad_tokens_per_s": 10500.0, "peak_alloc_gib": 6.9, "peak_reserved_gib": 7.2,
           "mfu_measured_peak": 0.4, "mfu_datasheet_peak": 0.32, "loss_token_mean": 12.5, "trained_tokens": 1000,
           "train_s": 60.0, "steps": 20}
    run.update(over)
    return run


def _doc(runs, date="2026-11-25"):
    flops = bench_flops.flop_counts(QWEN7B, 16, TARGETS)
    return {"kind": bench_report.KIND, "schema": 1, "date": date, "gpu": "NVIDIA H100 80GB HBM3", "flops": flops,
            "settings": {"max_seq_length": 2048, "lora_r": 16, "lengths": {"epoch": {"tokens": 2_520_000}}},
            "peaks": {"measured": {"bfloat16": 790.0}, "datasheet": 989.4}, "groups": [], "runs": runs}


def test_results_name_and_merge():
    assert bench_report.results_name("2026-11-25", "NVIDIA H100 80GB HBM3") == "2026-11-25-h100-80gb-hbm3.json"
    old = _doc([_run("full"), _run("real-pad", nonpad_tokens_per_s=4000.0)])
    new = _doc([_run("full", nonpad_tokens_per_s=9000.0), _run("full", backend="hf")])
    merged = bench_report.merge(old, new)
    by_key = {bench_report.run_key(r): r for r in merged["runs"]}
    assert len(by_key) == 3 == len(merged["runs"])
    assert by_key[("unsloth", "native", "full-pad")]["nonpad_tokens_per_s"] == 9000.0
    assert by_key[("unsloth", "native", "real-pad")]["nonpad_tokens_per_s"] == 4000.0
    with pytest.raises(ValueError):
        bench_report.merge(old, {"runs": []})


def test_merge_into_keeps_other_json_out(tmp_path):
    (tmp_path / "2026-11-24-cpu-demo.json").write_text(json.dumps({"demo": {}}))
    path = bench_report.merge_into(tmp_path, _doc([_run("full")]))
    bench_report.merge_into(tmp_path, _doc([_run("real-pad")]))
    assert path.name == "2026-11-25-h100-80gb-hbm3.json"
    assert len(bench_report.read_results(path)["runs"]) == 2
    assert [p.name for p, _ in bench_report.load_all(tmp_path)] == [path.name]


def test_targets_met_and_missed():
    runs = [
        _run("full", nonpad_tokens_per_s=10400.0, peak_reserved_gib=7.2),
        _run("full", precision="t4", peak_reserved_gib=7.4),
        _run("full", backend="hf", precision="t4", status="oom", error="CUDA out of memory"),
        _run("real-pad", nonpad_tokens_per_s=4000.0),
        _run("real-rebalance-b4", nonpad_tokens_per_s=7000.0, loss_token_mean=12.51),
    ]
    targets = {t["target"].split(":")[0]: t for t in bench_report.check_targets(_doc(runs))}
    assert targets["Unsloth, full 2048-token rows"]["met"]
    assert targets["Unsloth, full rows"]["met"]
    assert targets["Unsloth"]["met"] and not targets["transformers + PEFT + bitsandbytes"]["met"]
    assert targets["realistic lengths (target)"]["met"] and not targets["realistic lengths (stretch)"]["met"]
    epoch = targets["an epoch of 3000 realistic rows vs 8 h on a P100"]
    assert epoch["met"] and "6.0 min" in epoch["value"] and "T4 projection 91 min" in epoch["value"]
    # A faster lever whose loss disagrees with the unpacked run does not meet the target.
    runs[-1] = _run("real-rebalance-b4", nonpad_tokens_per_s=9000.0, loss_token_mean=13.5)
    targets = {t["target"].split(":")[0]: t for t in bench_report.check_targets(_doc(runs))}
    assert not targets["realistic lengths (target)"]["met"]


def test_report_markdown_and_readme_block(tmp_path):
    bench_report.merge_into(tmp_path, _doc([_run("full"), _run("real-pad", nonpad_tokens_per_s=4000.0),
                                            _run("real-packing", nonpad_tokens_per_s=6500.0)]))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_report.HEADLINE_START}\nold\n{bench_report.HEADLINE_END}\nrest\n")
    doc = tmp_path / "benchmarks.md"
    text = bench_report.write_report(tmp_path, doc, readme)
    md = doc.read_text()
    assert "4N = 28.3 GFLOP per token" in md and "| real-packing |" in md and "#### Targets" in md
    assert "10,481" in md  # the reference probes are quoted next to the measurements
    assert "10,500 tokens/s on full 2048-token rows" in text
    content = readme.read_text()
    assert content.startswith("intro\n") and content.endswith("rest\n") and "old" not in content and text in content


# ---------------------------------------------------------------- orchestration

FAKE_WORKER = '''
import json, sys, time
spec = json.load(open(sys.argv[1]))
def write(event, **data):
    with open(spec["events"], "a") as f:
        f.write(json.dumps({"event": event, **data}) + "\\n")
write("loaded", load_s=1.0, lora_s=0.1, dtype="float32", load_in_4bit=False, choice="fake")
for case in spec["cases"]:
    write("case_start", case=case)
    if case == "real-padfree":
        write("progress", case=case, steps=10, s_per_step=2.0, epoch=0.5, elapsed_s=20.0)
        time.sleep(600)  # hangs
    if case == "real-packing":
        sys.exit(1)  # crashes mid-case
    write("case_done", result={"case": case, "status": "ok", "s_per_step": 1.0})
write("end")
'''


def _group(tmp_path, monkeypatch, cases, deadline_s=0.0):
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(bench_groups, "WORKER", "fake_worker")
    args = argparse.Namespace(case_timeout=3, epoch_timeout=3, load_timeout=30, memory_cap_gib=15.0, isolation_check="off")
    spec = {"params": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}}
    return bench_groups.run_group("hf", "native", cases, spec, tmp_path, tmp_path / "log.txt", bench_groups.Clock(deadline_s), args, 0)


@pytest.mark.slow  # trains in subprocesses
def test_a_hanging_or_crashing_case_costs_only_itself(tmp_path, monkeypatch):
    runs, group = _group(tmp_path, monkeypatch, ["full", "real-padfree", "real-pad", "real-packing", "real-rebalance"])
    status = {r["case"]: r["status"] for r in runs}
    assert status == {"full": "ok", "real-padfree": "timeout", "real-pad": "ok", "real-packing": "crashed", "real-rebalance": "ok"}
    assert group["attempts"] == 3
    hung = next(r for r in runs if r["case"] == "real-padfree")
    assert (hung["partial_steps"], hung["s_per_step"], hung["epoch"]) == (10, 2.0, 0.5)  # what it measured before
    assert all(r["backend"] == "hf" and r["precision"] == "native" for r in runs)
    assert {r["case"]: r["regime"] for r in runs}["real-pad"] == "real"


def test_the_deadline_skips_what_is_left(tmp_path, monkeypatch):
    runs, _ = _group(tmp_path, monkeypatch, ["full", "real-padfree", "real-pad"], deadline_s=2.0)
    status = {r["case"]: r["status"] for r in runs}
    assert status == {"full": "ok", "real-padfree": "timeout", "real-pad": "skipped"}


def test_parse_group():
    assert bench.parse_group("unsloth/t4=full,real-pad") == ("unsloth", "t4", ["full", "real-pad"])
    assert bench.parse_group("hf=full") == ("hf", "native", ["full"])
    with pytest.raises(bench.UserError):
        bench.parse_group("vllm/native=full")


# ---------------------------------------------------------------- end to end on a CPU

@pytest.mark.slow  # trains in subprocesses
def test_train_and_report_end_to_end_on_cpu(tmp_path):
    """The tiny shape through the transformers backend: every case runs, the batchings agree."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "ai2human.bench", "train", "--backend", "hf", "--shape", "tiny", "--steps", "3",
         "--real-rows", "16", "--max-seq-length", "128", "--cases", "full,real-pad,real-packing,real-rebalance-b4",
         "--model-dir", str(tmp_path / "model"), "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("*-cpu.json")
    doc = bench_report.read_results(path)
    runs = {r["case"]: r for r in doc["runs"]}
    assert all(r["status"] == "ok" for r in runs.values())
    assert runs["full"]["steps"] == 3 and runs["full"]["padding_share"] == 0
    assert runs["real-rebalance-b4"]["microbatches_per_step"] == 2
    pad = runs["real-pad"]
    for case in ("real-packing", "real-rebalance-b4"):
        assert runs[case]["trained_tokens"] == pad["trained_tokens"] and runs[case]["nonpad_tokens"] == pad["nonpad_tokens"]
        assert runs[case]["loss_token_mean"] == pytest.approx(pad["loss_token_mean"], rel=1e-3)
    iso = doc["groups"][0]["isolation"]
    assert iso["max_rel_diff_packed"] < 1e-4 < iso["max_rel_diff_continuous"]
    assert (out / path.name.replace(".json", "-hf-native.log")).is_file()
    doc_md = tmp_path / "benchmarks.md"
    rep = subprocess.run([sys.executable, "-m", "ai2human.bench", "report", "--results-dir", str(tmp_path / "merged"),
                          "--add", str(path), "--doc", str(doc_md), "--readme", str(tmp_path / "none.md")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "| real-packing |" in doc_md.read_text() and (tmp_path / "merged" / path.name).is_file()


def test_meter_falls_back_to_the_collated_batches():
    from ai2human.bench.meter import Meter

    meter = Meter(torch)
    batch = micro_batch_stats(torch, torch.ones(2, 4, dtype=torch.long))
    meter.step_end()
    meter.step_end()  # two steps timed, no forward seen
    meter.collated = [batch] * 5  # one batch prepared beyond the 2 x 2 trained
    totals = meter.step_totals(grad_accum=2)
    assert meter.counted_by == "collator"
    assert [t["real"] for t in totals] == [16, 16] and [t["microbatches"] for t in totals] == [2, 2]


def test_epoch_time_measured_extrapolated_or_projected():
    base = [_run("real-pad", nonpad_tokens_per_s=4000.0), _run("real-packing", nonpad_tokens_per_s=7000.0)]

    def epoch_target(runs):
        return next(t for t in bench_report.check_targets(_doc(runs)) if t["target"].startswith("an epoch"))["value"]

    assert "from real-packing's steady-state rate" in epoch_target(base)
    measured = _run("epoch-packing", regime="epoch", train_s=300.0, steps=160)
    assert epoch_target(base + [measured]).startswith("5.0 min on this GPU (measured")
    partial = _run("epoch-packing", regime="epoch", status="timeout", epoch=0.5, elapsed_s=240.0)
    assert epoch_target(base + [partial]).startswith("8.0 min on this GPU (extrapolated from the first 50%")


@pytest.mark.slow  # trains in subprocesses
def test_eval_share_splits_the_training_call_and_keeps_the_eval_loss(tmp_path):
    """The evaluation-share benchmark on the tiny shape: a bigger eval batch changes the time, not the loss."""
    from ai2human.bench import eval_share

    out = tmp_path / "share.json"
    assert eval_share.main(["--max-steps", "2", "--eval-rows", "6", "--max-seq-length", "128", "--eval-batch", "1,0",
                            "--model-dir", str(tmp_path / "model"), "--out", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["per_device_eval_batch_size"] for r in runs] == [1, 4]  # 0 = auto, twice v5's micro-batch of 2
    assert all(0 < r["evaluation_share"] < 1 and r["evaluations"] == 2 for r in runs)
    assert runs[1]["first_eval_loss"] == pytest.approx(runs[0]["first_eval_loss"], rel=1e-3)
