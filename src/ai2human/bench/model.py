"""The benchmark's model: random weights in a real model's exact shape, and GPU peak rates.

Random weights cost the same compute and memory as trained ones, so the benchmark needs no hub
access: it builds a Qwen2 with Qwen2.5-7B's shape directly in bf16 on the GPU, saves it with
safetensors (to ``/dev/shm`` on the GPU machine) and loads it back through ``models.load_model``,
as the notebook loads ``unsloth/Qwen2.5-7B``. Its tokenizer is the tiny offline one with a
separate pad token (the synthetic rows never need text).

FLOP counts and their convention live in ``bench.flops``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ai2human.models.tiny import TINY_CONFIG

# What every Qwen2.5 config.json shares, then each shape's own sizes.
QWEN25 = dict(max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6)
SHAPES = {
    # config.json of Qwen/Qwen2.5-7B, less the vocabulary-independent details transformers fills in.
    "qwen2.5-7b": dict(QWEN25, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    # config.json of Qwen/Qwen2.5-0.5B (tied embeddings), for mid-sized generation checks.
    "qwen2.5-0.5b": dict(QWEN25, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    # A small Qwen2 for the GPU notebook checks (scripts/gpu_*_check.sh): big enough for real GPU
    # kernels, small enough to train 20 steps in seconds.
    "small": dict(QWEN25, hidden_size=512, intermediate_size=1408, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=1408, max_position_embeddings=4096, tie_word_embeddings=False),
    # The demo's tiny Qwen2, for CPU tests of the benchmark itself.
    "tiny": dict(TINY_CONFIG, vocab_size=2112, rms_norm_eps=1e-6),
}
MARKER = "bench_model.json"  # written last: a folder without it is an interrupted build
INIT_STD = 0.02  # Qwen2's initializer_range; keeps fp16 activations far from overflow

# Dense (no sparsity) 16-bit tensor-core TFLOP/s from the vendors' datasheets. The first key found
# in the device name wins, so specific names come first.
DATASHEET_TFLOPS = (
    ("H100 PCIE", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("H200 NVL", 835.0),
    ("H200", 989.4),
    ("A100", 312.0),
    ("L4", 121.0),
    ("A10G", 70.0),  # AWS's A10 variant
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
    ("P100", 18.7),  # no tensor cores: the fp16 rate of the PCIe card
)


def datasheet_tflops(gpu_name: str) -> float | None:
    """The datasheet's dense 16-bit TFLOP/s for a GPU name, None when unknown."""
    name = gpu_name.upper()
    for key, value in DATASHEET_TFLOPS:
        if key in name:
            return value
    return None


# ---------------------------------------------------------------- building the model folder

def default_model_dir(shape_name: str) -> Path:
    """``/dev/shm/ai2human-bench-<shape>`` where /dev/shm is writable (RAM: fast to write and read)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"ai2human-bench-{shape_name}"
    return Path(tempfile.gettempdir()) / f"ai2human-bench-{shape_name}"


def is_built(model_dir: str | Path, shape_name: str) -> bool:
    marker = Path(model_dir) / MARKER
    try:
        return json.loads(marker.read_text())["shape"] == SHAPES[shape_name]
    except (OSError, ValueError, KeyError):
        return False


def bench_tokenizer():
    """The tiny offline tokenizer, whose pad token (``<|pad|>``) is distinct from EOS.

    Unsloth replaces a pad token equal to EOS; a distinct one keeps both backends on the same ids.
    """
    from transformers import AutoTokenizer

    from ai2human.models.tiny import build_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model()))
    return tokenizer


def build_model(shape_name: str, model_dir: str | Path, device: str = "", dtype: str = "") -> dict:
    """Save a random-weight model of ``shape_name`` with the bench tokenizer in ``model_dir``.

    On CUDA the weights are made directly in bf16 on the GPU (a 7B model initialised in fp32 on a
    CPU takes minutes) and written as safetensors. Reuses a complete folder of the same shape.
    Returns what was done and how long it took.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_dir = Path(model_dir)
    if is_built(model_dir, shape_name):
        return {"model_dir": str(model_dir), "built": False, "build_s": 0.0}
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
    start = time.perf_counter()
    tokenizer = bench_tokenizer()
    shape = SHAPES[shape_name]
    if len(tokenizer) > shape["vocab_size"]:
        raise ValueError(f"the bench tokenizer has {len(tokenizer)} tokens, more than shape {shape_name}'s vocabulary")
    config = Qwen2Config(
        **shape,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=INIT_STD,
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        torch.manual_seed(0)
        with torch.device(device), torch.no_grad():
            model = Qwen2ForCausalLM(config)
            for name, param in model.named_parameters():  # explicit: no reliance on lazy init
                if name.endswith("norm.weight"):
                    param.fill_(1.0)
                elif param.dim() == 2:
                    param.normal_(0.0, INIT_STD)
                else:
                    param.zero_()  # q/k/v biases
    finally:
        torch.set_default_dtype(previous)
    init_s = time.perf_counter() - start
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    tmp = Path(tempfile.mkdtemp(prefix=model_dir.name + ".", dir=model_dir.parent))
    try:
        model.save_pretrained(tmp, max_shard_size="4GB")  # safetensors: the only format in transformers 5
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"shape_name": shape_name, "shape": shape, "dtype": dtype}, indent=2))
        tmp.rename(model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"model_dir": str(model_dir), "built": True, "build_s": round(time.perf_counter() - start, 1),
            "init_s": round(init_s, 1), "dtype": dtype}


def measure_matmul_tflops(dtype: str = "bfloat16", n: int = 8192, warmup: int = 5, repeat: int = 20) -> float | None:
    """Dense n x n x n matrix-product TFLOP/s on GPU 0 in ``dtype`` (median of timed products); None on CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    for _ in range(warmup):
        a @ b
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    times.sort()
    return round(2 * n**3 / times[len(times) // 2] / 1e12, 1)


def main(argv: list[str] | None = None) -> int:
    """``python -m ai2human.bench.model SHAPE MODEL_DIR [OUT_JSON]``: build the model if needed;
    with OUT_JSON also measure the matmul peaks and write both there."""
    import sys

    import torch

    args = argv if argv is not None else sys.argv[1:]
    if len(args) not in (2, 3) or args[0] not in SHAPES:
        print(f"usage: python -m ai2human.bench.model {{{','.join(SHAPES)}}} MODEL_DIR [OUT_JSON]", file=sys.stderr)
        return 2
    info = build_model(args[0], args[1])
    if len(args) == 3:
        info["measured_tflops"] = {d: measure_matmul_tflops(d) for d in ("bfloat16", "float16")}
        info["cuda"] = torch.cuda.is_available()
        Path(args[2]).write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
