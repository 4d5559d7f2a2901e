"""One process of the generation benchmark: load the model one way, check the fast engine, time each case.

Unsloth patches transformers when it is imported and a memory cap (a T4's 15 GiB) holds for a whole
process, so every backend / precision / cap gets its own process (``bench.generation`` starts them):

    python -m ai2human.bench.gen_worker SPEC_JSON OUT_JSON

SPEC_JSON holds ``model_dir``, ``tokenizer_dir`` ("" = the model folder's), ``backend`` (unsloth /
hf), ``dtype``, ``load_in_4bit``, ``cap_gib`` (0 = none), ``lora_r``, ``prompts`` (the texts),
``check`` (engines whose greedy tokens are compared with the ``reference`` engine) and ``cases``: dicts
with ``engine``, ``graphs``, ``dequantize``, ``prompts`` (how many), ``batch`` (0 = auto), ``max_new_tokens``,
``fixed`` (every row generates exactly max_new_tokens: random weights rarely say EOS) and ``systems``
(1, or 2 for the evaluation's base + fine-tuned pair). OUT_JSON is rewritten after every case, so a
process stopped at its time limit still leaves what it measured.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

GIB = 2**30


def load(spec: dict):
    """``(model, tokenizer)``: the base loaded as the notebooks load it, a LoRA of rank ``lora_r`` on
    every linear layer with random B matrices (a fresh LoRA adds zeros, which would hide a path that
    dropped the adapter), in inference mode."""
    import torch

    from ai2human.models.hardware import BackendChoice
    from ai2human.models.loading import DEFAULT_TARGET_MODULES, load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.get("cap_gib") and device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, spec["cap_gib"] * GIB / total))
    choice = BackendChoice(spec["backend"], spec["dtype"], bool(spec["load_in_4bit"]) and device == "cuda", device)
    model, tokenizer = load_model(spec["model_dir"], choice, spec.get("max_seq_length", 4096), spec.get("tokenizer_dir", ""))
    r, targets = spec.get("lora_r", 16), list(DEFAULT_TARGET_MODULES)
    if spec["backend"] == "unsloth":
        from unsloth import FastLanguageModel

        model = FastLanguageModel.get_peft_model(model, r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=targets,
                                                 bias="none", use_gradient_checkpointing=False, random_state=0)
    else:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    if spec["backend"] == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    return model, tokenizer


def check_engines(model, tokenizer, prompts: list[str], engines: list[str], reference: str) -> dict:
    """Greedy tokens of each engine against the reference engine: 8 prompts of mixed lengths, 64 tokens."""
    from ai2human.evaluate.generation import generate

    def run(name: str):  # ENGINE[-eager|-bnb|-unpacked]: Unsloth's step un-graphed, bitsandbytes' own 4-bit
        engine, _, flag = name.partition("-")  # matmul, or KV heads copied out per query head
        return generate(model, tokenizer, prompts, max_new_tokens=64, batch_size=4, engine=engine,
                        graphs=flag != "eager", dequantize=False if flag == "bnb" else None,
                        packed_attention=flag != "unpacked").token_ids

    expected = run(reference)
    result = {"reference": reference, "prompts": len(prompts), "max_new_tokens": 64}
    for engine in engines:
        got = run(engine)
        same = sum(a == b for a, b in zip(got, expected))
        first = [next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))) for a, b in zip(got, expected)]
        result[engine] = {"identical_rows": same, "rows": len(expected), "first_difference": first}
    return result


def run_case(model, tokenizer, prompts: list[str], case: dict) -> dict:
    """Time one case: ``systems`` 2 runs base (adapter off) then fine-tuned, as the evaluation does."""
    import contextlib

    import torch

    from ai2human.evaluate.generation import generate

    cuda = torch.cuda.is_available()
    texts = prompts[: case["prompts"]]
    new = case["max_new_tokens"]
    kwargs = dict(max_new_tokens=new, min_new_tokens=new if case.get("fixed", True) else 0,
                  temperature=case.get("temperature", 0.7), top_p=case.get("top_p", 0.9), seed=3407,
                  batch_size=case.get("batch", 0), engine=case["engine"], graphs=case.get("graphs", True),
                  dequantize=case.get("dequantize"), packed_attention=case.get("packed_attention", True))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    runs = []
    for system in ("base", "finetuned")[-case.get("systems", 1):]:
        switch = model.disable_adapter() if system == "base" else contextlib.nullcontext()
        with switch:
            result = generate(model, tokenizer, texts, **kwargs)
        runs.append({"system": system, **result.summary(), "batch_plan": _plan_sizes(result, texts, tokenizer)})
    wall = time.perf_counter() - began
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return {**case, "wall_s": round(wall, 2), "runs": runs, "prompt_tokens": lengths,
            "tokens_per_second": round(sum(r["new_tokens"] for r in runs) / sum(r["seconds"] for r in runs), 1),
            "peak_alloc_gib": round(torch.cuda.max_memory_allocated() / GIB, 2) if cuda else None,
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2) if cuda else None}


def _plan_sizes(result, texts, tokenizer) -> list[int]:
    from ai2human.evaluate.gen_batching import plan_batches

    return [len(b) for b in plan_batches(list(range(len(texts))), result.batch_size)]


def main(argv: list[str] | None = None) -> int:
    import torch

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print("usage: python -m ai2human.bench.gen_worker SPEC_JSON OUT_JSON", file=sys.stderr)
        return 2
    spec, out = json.loads(Path(args[0]).read_text()), Path(args[1])
    doc = {"backend": spec["backend"], "dtype": spec["dtype"], "cap_gib": spec.get("cap_gib", 0), "cases": []}

    def save():
        out.write_text(json.dumps(doc, indent=1) + "\n")

    began = time.perf_counter()
    model, tokenizer = load(spec)
    doc["load_s"] = round(time.perf_counter() - began, 1)
    if torch.cuda.is_available():
        doc["gpu"] = torch.cuda.get_device_name(0)
        doc["weights_gib"] = round(torch.cuda.memory_allocated() / GIB, 2)
    prompts = spec["prompts"]
    from ai2human.evaluate.generation import generate

    began = time.perf_counter()
    generate(model, tokenizer, prompts[:8], max_new_tokens=4, batch_size=8, engine="plain")  # CUDA context, kernels, allocator
    doc["warmup_s"] = round(time.perf_counter() - began, 1)
    save()
    if spec.get("check"):
        began = time.perf_counter()
        doc["equivalence"] = check_engines(model, tokenizer, prompts[:: max(1, len(prompts) // 8)][:8], spec["check"],
                                           spec.get("reference", "plain"))
        doc["equivalence"]["seconds"] = round(time.perf_counter() - began, 1)
        print(json.dumps(doc["equivalence"]), flush=True)
        save()
    for case in spec["cases"]:
        try:
            doc["cases"].append(run_case(model, tokenizer, prompts, case))
        except Exception as exc:  # one failing engine must not lose the others' numbers
            doc["cases"].append({**case, "error": f"{type(exc).__name__}: {str(exc)[:500]}"})
        summary = {k: v for k, v in doc["cases"][-1].items() if k not in ("prompt_tokens", "runs")}
        print(json.dumps(summary), flush=True)
        save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
