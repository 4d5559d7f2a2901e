"""Generation engine pieces that need no model: batch sizing from memory, batch plans, engine choice,
the bandwidth roofline of the benchmark, and 4-bit layers run as 16-bit matmuls where bitsandbytes runs."""

import types

import pytest

from ai2human.bench.generation import NF4_BITS, roofline
from ai2human.bench.model import SHAPES
from ai2human.evaluate import gen_batching as gb
from ai2human.evaluate.gen_engines import choose_engine, is_unsloth_model

QWEN7B = types.SimpleNamespace(num_attention_heads=28, num_key_value_heads=4, hidden_size=3584, num_hidden_layers=28,
                               intermediate_size=18944, vocab_size=152064)
GIB = 2**30


def test_kv_bytes_match_qwen2_5_7b():
    # 28 layers x K and V x 4 KV heads x 128 dims x 2 bytes = 57,344 bytes per token.
    assert gb.kv_bytes_per_token(QWEN7B, 2) == 57344


def test_auto_batch_grows_with_free_memory_and_shrinks_with_length():
    lengths = [500] * 300
    h200 = gb.auto_batch_size(QWEN7B, 2, lengths, 512, free=120 * GIB)
    t4 = gb.auto_batch_size(QWEN7B, 2, lengths, 512, free=9 * GIB)
    longer = gb.auto_batch_size(QWEN7B, 2, [1500] * 300, 512, free=9 * GIB)
    assert h200 == gb.MAX_AUTO_BATCH  # capped
    assert 8 < t4 < h200 and longer < t4
    # The plan fits: rows x bytes per row within the share of free memory.
    assert t4 * gb.row_bytes(QWEN7B, 2, 500, 512) <= gb.MEMORY_SHARE * 9 * GIB
    assert gb.auto_batch_size(QWEN7B, 2, [500] * 100, 512, free=120 * GIB) == 100  # never more than the prompts
    assert gb.auto_batch_size(QWEN7B, 2, [500], 512, free=1) == 1  # at least one row
    assert gb.auto_batch_size(QWEN7B, 2, [500] * 40, 512, free=None) == gb.CPU_AUTO_BATCH


def test_plan_batches_is_even_and_keeps_every_row_once():
    order = list(range(10))
    assert [len(b) for b in gb.plan_batches(order, 8)] == [5, 5]
    assert [len(b) for b in gb.plan_batches(order, 4)] == [4, 3, 3]
    for size in (1, 3, 7, 10, 50):
        plan = gb.plan_batches(order, size)
        assert [i for b in plan for i in b] == order and max(len(b) for b in plan) <= size
    assert gb.plan_batches([], 4) == []


class Unpatched:
    def modules(self):
        return [self]


class Patched(Unpatched):
    def __init__(self):
        self._old_generate = object()


def test_engine_choice():
    assert choose_engine(Unpatched(), "auto", "cuda") == "static"
    assert choose_engine(Unpatched(), "auto", "cpu") == "static"
    assert choose_engine(Unpatched(), "plain", "cuda") == "plain"
    assert is_unsloth_model(Patched()) and not is_unsloth_model(Unpatched())
    assert choose_engine(Patched(), "auto", "cuda") == "unsloth"
    with pytest.raises(ValueError, match="static"):
        choose_engine(Patched(), "static", "cuda")
    with pytest.raises(ValueError, match="engine must be"):
        choose_engine(Unpatched(), "fast", "cuda")


def test_roofline_arithmetic():
    shape = SHAPES["qwen2.5-7b"]
    one = roofline(shape, [[500] * 8], 512, 4.8e12)
    # 4-bit linear weights (NF4, double-quantised) + the 16-bit output head and LoRA: ~4.5 GB a step.
    linear = 28 * (3584 * 3584 * 2 + 3584 * 512 * 2 + 3 * 3584 * 18944)
    assert one["weight_gb"] == pytest.approx((linear * NF4_BITS / 8 + 3584 * 152064 * 2) / 1e9, rel=0.02)
    # By hand: 512 steps each reading the weights, plus the cache of 8 rows of 500 + t tokens.
    kv = 57344 * (512 * 8 * 500 + 8 * 512 * 511 / 2)
    seconds = (512 * one["weight_gb"] * 1e9 + kv) / 4.8e12
    assert one["roofline_tokens_per_s"] == pytest.approx(8 * 512 / seconds, rel=1e-3)
    big = roofline(shape, [[500] * 100], 512, 4.8e12)
    assert big["roofline_tokens_per_s"] > 5 * one["roofline_tokens_per_s"]  # weights are shared by the batch
    two = roofline(shape, [[500] * 50, [500] * 50], 512, 4.8e12)
    assert two["roofline_tokens_per_s"] < big["roofline_tokens_per_s"]  # two passes read the weights twice


def test_dequantized_linears_match_bitsandbytes():
    torch = pytest.importorskip("torch")
    bnb = pytest.importorskip("bitsandbytes")
    from ai2human.evaluate.gen_dequant import dequantized_linears

    torch.manual_seed(0)
    model = torch.nn.Sequential(bnb.nn.Linear4bit(64, 32, bias=True, compute_dtype=torch.float32, quant_type="nf4"),
                                torch.nn.ReLU(), bnb.nn.Linear4bit(32, 8, bias=False, compute_dtype=torch.float32,
                                                                   quant_type="nf4")).to("cpu")
    x = torch.randn(5, 64)
    with torch.no_grad():
        reference = model(x)
        with dequantized_linears(model, free=10**12) as used:
            assert used == "kept" and "forward" in model[0].__dict__
            assert torch.allclose(model(x), reference, atol=1e-5)
        for free in (None, 10):  # a CPU-only call (no free-memory figure), or too little memory: bitsandbytes as is
            with dequantized_linears(model, free=free) as used:
                assert used == "off" and "forward" not in model[0].__dict__
    assert "forward" not in model[0].__dict__  # restored


def _device_file(tmp_path, tokens_per_s, suite="engines", cap=0, status="ok"):
    from ai2human.bench.generation import attach_rooflines

    case = {"engine": "static", "prompts": 100, "batch": 0, "max_new_tokens": 512, "wall_s": 60.0,
            "tokens_per_second": tokens_per_s, "prompt_tokens": [480] * 100, "peak_alloc_gib": 30.0,
            "runs": [{"system": "finetuned", "batch_size": 100, "new_tokens": 51200, "seconds": 51200 / max(tokens_per_s, 1.0),
                      "dequantize": "kept"}]}
    worker = {"backend": "hf", "dtype": "bfloat16", "cap_gib": cap, "gpu": "NVIDIA H200", "status": status,
              "cases": [] if cap else [case]}
    attach_rooflines(worker, SHAPES["qwen2.5-7b"])
    path = tmp_path / f"generation-{suite}.json"
    path.write_text(__import__("json").dumps({"kind": "generation", "suite": suite, "shape": "qwen2.5-7b", "date": "2026-11-30",
                                              "versions": {"torch": "2.11.0"}, "today_tokens_per_s": 208,
                                              "workers": [worker]}))
    return path


def test_generation_report_targets_and_section(tmp_path):
    from ai2human.bench import gen_report

    slow = gen_report.merge([_device_file(tmp_path, 850.0), _device_file(tmp_path, 0, suite="t4", cap=15,
                                                                          status="timed out after 230 s")])
    targets = {t["target"].split(" >=")[0].split(":")[0]: t for t in gen_report.check_targets(slow)}
    assert not targets["generated tokens/s at the automatic batch"]["met"]
    assert "850" in targets["generated tokens/s at the automatic batch"]["value"]
    assert "timed out" in targets["T4 emulation"]["value"] and not targets["T4 emulation"]["met"]
    fast = gen_report.merge([_device_file(tmp_path, 16000.0)])
    met = {t["target"]: t["met"] for t in gen_report.check_targets(fast)}
    assert all(met.values()) and len(met) == 2  # tokens/s and the roofline share (> 25% of ~52k)
    path = tmp_path / "2026-11-30-h200-generation.json"
    path.write_text(__import__("json").dumps(slow))
    text = gen_report.markdown(gen_report.load_all(tmp_path))
    assert "## Generation benchmark" in text and "| 850 | 4.1x |" in text and "**no**" in text
    assert '"prompt_tokens":' not in path.read_text()  # lengths summarised, not stored row by row
