"""Batched vs one-at-a-time generation speed, in generated tokens per second, on one model.

The evaluation notebook generates in batches (issue #5 asks for at least 4x the tokens/s of
one-at-a-time generation on the GPU machine). This measures both with ``ai2human.evaluate.generation``
on the same model, prompts and settings, and writes the numbers as JSON.

Without ``--model`` it builds a random-weight Qwen2 of a chosen shape (default on CUDA: the
Qwen2.5-7B shape in bf16; on CPU: the tiny demo shape) with the tiny model's offline tokenizer, so
it needs no hub access. Random weights rarely emit EOS at a fair rate, so every prompt generates
exactly ``--max-new-tokens`` tokens (min_new_tokens = max_new_tokens) in both modes.

Needs only torch, transformers and peft (not the installed package):

    PYTHONPATH=src python scripts/gpu_generation_bench.py --out $OUT/generation_bench.json
    PYTHONPATH=src python scripts/gpu_generation_bench.py --preset tiny --prompts 8 --single-prompts 4
    PYTHONPATH=src python scripts/gpu_generation_bench.py --model /path/to/model_dir --lora-r 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from ai2human.evaluate.generation import generate
from ai2human.data.prompts import format_prompt
from ai2human.data.sample import generate_pairs
from ai2human.bench.model import SHAPES
from ai2human.models.tiny import build_tiny_model

# Random-weight shapes: the exact Qwen2.5 configs (their vocabularies included) and the tiny demo model.
PRESETS = SHAPES
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="a local model folder to load instead of a random-weight preset")
    parser.add_argument("--preset", default="auto", choices=["auto", *PRESETS], help="random-weight shape; auto = qwen2.5-7b on CUDA, tiny on CPU")
    parser.add_argument("--prompts", type=int, default=32, help="prompts generated in batches")
    parser.add_argument("--single-prompts", type=int, default=8, help="of those, how many also run one at a time (the slow part)")
    parser.add_argument("--batch-sizes", default="8,16", help="comma-separated batch sizes to measure; the first is compared against 4x")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.7, help="0 = greedy; the evaluation samples at 0.7")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--lora-r", type=int, default=16, help="wrap in a LoRA of this rank as the fine-tuned model is (0 = none)")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--out", default="", help="JSON file to write (default $OUT/generation_bench.json when $OUT is set)")
    return parser.parse_args(argv)


def build_model(args, device, dtype):
    """(model, tokenizer, description) per --model or --preset."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    if args.model:
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device)
        described = {"model": args.model}
    else:
        preset = args.preset if args.preset != "auto" else ("qwen2.5-7b" if device == "cuda" else "tiny")
        tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model()))
        config = Qwen2Config(eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, **PRESETS[preset])
        torch.manual_seed(args.seed)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):  # initialise on the GPU: a 7B model on the CPU takes minutes
                model = Qwen2ForCausalLM(config)
        finally:
            torch.set_default_dtype(previous)
        described = {"model": f"random-weight Qwen2 ({preset} shape)", "preset": preset}
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if args.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=args.lora_r, lora_alpha=args.lora_r, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    model.eval()
    described["parameters_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
    return model, tokenizer, described


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if device == "cuda" else torch.float32
    began = time.perf_counter()
    model, tokenizer, described = build_model(args, device, dtype)
    load_seconds = time.perf_counter() - began
    prompts = [format_prompt(p["LLM"]) for p in generate_pairs(args.prompts, seed=args.seed)]
    prompt_tokens = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    settings = dict(max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens, temperature=args.temperature,
                    top_p=args.top_p, seed=args.seed)

    generate(model, tokenizer, prompts[: max(batch_sizes)], **{**settings, "max_new_tokens": 4, "min_new_tokens": 4},
             batch_size=max(batch_sizes))  # warm-up: CUDA context, kernels, allocator
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    single = generate(model, tokenizer, prompts[: args.single_prompts], batch_size=1, **settings)
    print(f"one at a time: {single.tokens_per_second:.1f} tokens/s ({sum(single.new_tokens)} tokens in {single.seconds:.1f} s)", flush=True)
    batched = {}
    for size in batch_sizes:
        result = generate(model, tokenizer, prompts, batch_size=size, **settings)
        batched[size] = result
        print(f"batch {size}: {result.tokens_per_second:.1f} tokens/s ({sum(result.new_tokens)} tokens in {result.seconds:.1f} s), "
              f"{result.tokens_per_second / single.tokens_per_second:.1f}x", flush=True)

    first = batched[batch_sizes[0]]
    ratio = first.tokens_per_second / single.tokens_per_second
    report = {
        **described,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "dtype": str(dtype).removeprefix("torch."),
        "lora_r": args.lora_r,
        "prompts": args.prompts,
        "single_prompts": args.single_prompts,
        "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens), 1),
        **{k: v for k, v in settings.items() if k != "min_new_tokens"},
        "fixed_length": True,
        "load_seconds": round(load_seconds, 1),
        "one_at_a_time": single.summary(),
        "batched": {str(size): {**r.summary(), "speedup": round(r.tokens_per_second / single.tokens_per_second, 2)}
                    for size, r in batched.items()},
        "speedup": round(ratio, 2),
        "speedup_batch_size": batch_sizes[0],
        "meets_4x": bool(ratio >= 4),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__},
    }
    out = args.out or (str(Path(os.environ["OUT"]) / "generation_bench.json") if os.environ.get("OUT") else "")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"batch {batch_sizes[0]} vs one at a time: {ratio:.1f}x tokens/s -> {'meets' if ratio >= 4 else 'FAILS'} the 4x target")
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["meets_4x"] else 1)
