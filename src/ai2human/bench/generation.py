"""The generation benchmark: tokens/s per engine and batch at 7B shape, against the memory-bandwidth roofline.

    python -m ai2human.bench.generation --suite engines --out-dir $OUT   # on the GPU machine (scripts/gpu_generation.sh)
    python -m ai2human.bench.generation --suite cpu                     # the tiny model on a CPU

It builds a random-weight model in Qwen2.5-7B's exact shape (``bench.model``; random weights cost
what trained ones cost), prompts of realistic token lengths with the real Qwen2.5 tokenizer
(``bench/qwen2_tokenizer``), and runs ``evaluate.generation.generate`` - the function the evaluation,
the preview and the app call - in one process per backend / precision / memory cap (``gen_worker``).

Roofline: decoding is bound by memory bandwidth. Each step reads every weight once (4-bit NF4 with
double-quantised constants = 4.127 bits per linear weight; the output head, LoRA and norms in 16 bits)
and the KV cache of every row of the batch (its prompt plus the tokens generated so far). For a batch
plan, time at the bandwidth = sum over steps of those bytes / bandwidth; roofline tokens/s = the
tokens the plan generates / that time; the share is measured tokens/s / roofline tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ai2human.bench.flops import layer_linears
from ai2human.bench.model import SHAPES

KIND = "generation"
REPO = Path(__file__).resolve().parents[3]
QWEN_TOKENIZER = REPO / "bench" / "qwen2_tokenizer"
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4-bit codes, 8-bit absmax per 64, fp32 per 256 absmax blocks
# Datasheet memory bandwidth, bytes/s; the first key found in the device name wins.
BANDWIDTH = (("H200", 4.8e12), ("H100 PCIE", 2.0e12), ("H100", 3.35e12), ("A100", 2.0e12), ("L4", 0.3e12),
             ("T4", 0.32e12))
TODAY_TOKENS_PER_S = 208  # issue 14: the evaluation at batch 8, H200, 7B shape, 4-bit, 512 new tokens
SUITES = ("engines", "gqa", "unsloth", "t4", "cpu")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def bandwidth(gpu_name: str) -> float | None:
    name = gpu_name.upper()
    return next((value for key, value in BANDWIDTH if key in name), None)


def roofline(shape: dict, batches: list[list[int]], max_new_tokens: int, bytes_per_s: float,
             weight_bits: float = NF4_BITS, lora_r: int = 16, dtype_bytes: int = 2) -> dict:
    """Bandwidth-bound tokens/s for ``batches`` (each a list of prompt token lengths) at ``max_new_tokens``."""
    layers, hidden = shape["num_hidden_layers"], shape["hidden_size"]
    linears = layer_linears(shape)
    quantized = layers * sum(a * b for a, b in linears.values())
    lora = layers * sum(lora_r * (linears[t][0] + linears[t][1]) for t in LORA_TARGETS) if lora_r else 0
    head = hidden * shape["vocab_size"]
    weight_bytes = quantized * weight_bits / 8 + (head + lora) * dtype_bytes
    heads, kv_heads = shape["num_attention_heads"], shape["num_key_value_heads"]
    kv_per_token = 2 * layers * kv_heads * (shape.get("head_dim") or hidden // heads) * dtype_bytes
    steps = seconds = tokens = kv_total = 0.0
    for lengths in batches:
        n = len(lengths)
        kv = kv_per_token * (max_new_tokens * sum(lengths) + n * max_new_tokens * (max_new_tokens - 1) / 2)
        seconds += (max_new_tokens * weight_bytes + kv) / bytes_per_s
        steps += max_new_tokens
        tokens += n * max_new_tokens
        kv_total += kv
    return {"weight_gb": round(weight_bytes / 1e9, 3), "kv_bytes_per_token": kv_per_token,
            "mean_kv_gb_per_step": round(kv_total / steps / 1e9, 3) if steps else 0.0,
            "bandwidth_tb_s": bytes_per_s / 1e12,
            "roofline_tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0}


def realistic_prompts(tokenizer, count: int, seed: int = 3407, median: int = 450, sigma: float = 0.45) -> list[str]:
    """``count`` evaluation prompts whose AI texts have log-normal token lengths (median ``median``,
    80 to 1200): the real essays the issue measured on run to ~450 tokens. Text from the synthetic sample."""
    from ai2human.data.prompts import format_prompt
    from ai2human.data.sample import generate_pairs

    rng = np.random.default_rng(seed)
    sentences = [s.strip() + "." for p in generate_pairs(200, seed=seed) for s in p["LLM"].split(".") if s.strip()]
    targets = np.clip(rng.lognormal(np.log(median), sigma, count), 80, 1200).astype(int)
    prompts = []
    for target in targets:
        words, tokens = [], 0
        while tokens < target:
            words.append(sentences[int(rng.integers(len(sentences)))])
            tokens = len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"])
        prompts.append(format_prompt(" ".join(words)))
    return prompts


def suite(name: str) -> list[dict]:
    """Worker specs (less model, tokenizer and prompts) of a suite."""
    eval_case = dict(engine="static", prompts=100, batch=0, max_new_tokens=512)
    if name == "engines":  # one H200, bf16 compute, 4-bit weights: ours, then raw Unsloth
        return [dict(backend="hf", dtype="bfloat16", check=["static", "plain-bnb"], reference="plain", timeout=230, cases=[
            {**eval_case},
            {**eval_case, "prompts": 256, "max_new_tokens": 256},
            {**eval_case, "batch": 8, "prompts": 16, "max_new_tokens": 128},
            {**eval_case, "dequantize": False, "max_new_tokens": 128},
        ])]
    if name == "gqa":  # the engine with packed decode attention, and the T4-emulated evaluation generation
        return [dict(backend="hf", dtype="bfloat16", check=["static-unpacked"], reference="static", timeout=200, cases=[
            {**eval_case}, {**eval_case, "prompts": 256, "max_new_tokens": 256},
            {**eval_case, "batch": 8, "prompts": 16, "max_new_tokens": 128}]),
            dict(backend="hf", dtype="float16", cap_gib=15, timeout=230, cases=[{**eval_case, "systems": 2, "fixed": False}])]
    if name == "unsloth":  # raw Unsloth (its own fast inference), eager and with its CUDA-graph step
        unsloth = {**eval_case, "engine": "unsloth"}
        return [dict(backend="unsloth", dtype="bfloat16", check=["unsloth"], reference="unsloth-eager", cases=[
            {**unsloth}, {**unsloth, "graphs": False, "max_new_tokens": 128},
            {**unsloth, "graphs": False, "batch": 8, "prompts": 16, "max_new_tokens": 128}])]
    if name == "t4":  # fp16 under a T4's 15 GiB: the evaluation's generation, base + fine-tuned, up to 512
        return [dict(backend="hf", dtype="float16", cap_gib=15, timeout=230,
                     cases=[{**eval_case, "systems": 2, "fixed": False}])]
    if name == "cpu":  # the demo's tiny model, float32, both engines a CPU has
        cpu = dict(backend="hf", dtype="float32", load_in_4bit=False)
        return [dict(**cpu, check=["static"], reference="plain", cases=[
            dict(engine="plain", prompts=32, batch=0, max_new_tokens=64),
            dict(engine="plain", prompts=32, batch=8, max_new_tokens=64),
            dict(engine="static", prompts=32, batch=0, max_new_tokens=64)])]
    raise ValueError(f"unknown suite {name!r}: {', '.join(SUITES)}")


def attach_rooflines(doc: dict, shape: dict) -> None:
    """Each case's roofline for the batch plan it ran (longest prompts first, as generate plans)."""
    from ai2human.evaluate.gen_batching import plan_batches

    bw = bandwidth(doc.get("gpu", ""))
    for case in doc.get("cases", []):
        if "runs" not in case or not bw:
            continue
        lengths = sorted(case["prompt_tokens"], reverse=True)
        plan = [[lengths[i] for i in b] for b in plan_batches(list(range(len(lengths))), case["runs"][-1]["batch_size"])]
        case["roofline"] = roofline(shape, plan, case["max_new_tokens"], bw)
        case["roofline_share"] = round(case["tokens_per_second"] / case["roofline"]["roofline_tokens_per_s"], 4)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="engines", choices=SUITES)
    parser.add_argument("--shape", default="", help="a bench.model shape; default qwen2.5-7b on CUDA, tiny on a CPU")
    parser.add_argument("--prompts", type=int, default=256, help="prompts built (cases take the first N)")
    parser.add_argument("--out-dir", default=os.environ.get("OUT", "bench/results"))
    parser.add_argument("--worker-timeout", type=int, default=420, help="seconds per worker process")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import torch
    from transformers import AutoTokenizer

    from ai2human.bench.model import build_model, default_model_dir

    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    shape_name = args.shape or ("qwen2.5-7b" if cuda else "tiny")
    model_dir = default_model_dir(shape_name)
    began = time.perf_counter()
    built = build_model(shape_name, model_dir)
    tokenizer_dir = str(QWEN_TOKENIZER) if SHAPES[shape_name]["vocab_size"] > 150000 else ""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or str(model_dir))
    prompts = realistic_prompts(tokenizer, args.prompts)
    print(f"model {shape_name} ready in {time.perf_counter() - began:.0f} s; {len(prompts)} prompts", flush=True)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"kind": KIND, "schema": 1, "suite": args.suite, "shape": shape_name, "built": built,
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "today_tokens_per_s": TODAY_TOKENS_PER_S,
           "versions": versions(), "workers": []}
    for i, spec in enumerate(suite(args.suite)):
        spec = {"model_dir": str(model_dir), "tokenizer_dir": tokenizer_dir, "load_in_4bit": True, "lora_r": 16,
                "prompts": prompts, **spec}
        spec_path, part = out_dir / f".spec-{i}.json", out_dir / f".worker-{i}.json"
        spec_path.write_text(json.dumps(spec))
        began = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "ai2human.bench.gen_worker", str(spec_path), str(part)],
                                  timeout=spec.get("timeout", args.worker_timeout))
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"timed out after {spec.get('timeout', args.worker_timeout)} s"
        worker = json.loads(part.read_text()) if part.is_file() else {"backend": spec["backend"], "cases": []}
        worker.update(status=status, wall_s=round(time.perf_counter() - began, 1))
        attach_rooflines(worker, SHAPES[shape_name])
        doc["workers"].append(worker)
        spec_path.unlink()
        part.unlink(missing_ok=True)
        path = out_dir / f"generation-{args.suite}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"worker {spec['backend']} {spec['dtype']}: {status}; {path}", flush=True)
    return 0


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "unsloth", "unsloth_zoo", "triton"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


if __name__ == "__main__":
    raise SystemExit(main())
