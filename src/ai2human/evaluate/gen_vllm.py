"""vLLM as the generation engine, with the LoRA adapter applied per request, where ``vllm`` is installed.

vLLM schedules rows continuously with a paged KV cache (no padding, no per-row copies), which is
what large-batch decoding needs; it is not a dependency (a multi-GB CUDA build, not on Kaggle's
image), and nothing here imports it unless ``available()`` says it is there. It loads the model
itself, so it takes a model name and an adapter folder, not the loaded model the other engines run:

    engine = VllmEngine("unsloth/Qwen2.5-7B", adapter_dir=run_dir / rundir.ADAPTER)
    base = engine.generate(prompts, 512, temperature=0.7, top_p=0.9, adapter=False)
    tuned = engine.generate(prompts, 512, temperature=0.7, top_p=0.9)

Results are ``GenerationResult``s with the same semantics as ``generation.generate``: responses
only, cut at EOS (and at a new Alpaca block), ``hit_limit`` per text, in prompt order. Unmeasured
here: the GPU machine has no vLLM build (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from ai2human.evaluate.generation import GenerationResult, cut_at_template


def available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class VllmEngine:
    """One vLLM instance of ``model_name``; ``adapter_dir`` (a PEFT LoRA folder) is applied per call."""

    def __init__(self, model_name: str, adapter_dir: str | Path | None = None, max_seq_length: int = 2048,
                 load_in_4bit: bool = True, gpu_memory_utilization: float = 0.85, lora_rank: int = 64, seed: int = 0):
        from vllm import LLM

        kwargs = dict(model=model_name, max_model_len=max_seq_length, gpu_memory_utilization=gpu_memory_utilization,
                      seed=seed)
        if load_in_4bit:
            kwargs["quantization"] = "bitsandbytes"
        if adapter_dir is not None:
            kwargs.update(enable_lora=True, max_lora_rank=lora_rank)
        self.llm = LLM(**kwargs)
        self.adapter_dir = str(adapter_dir) if adapter_dir is not None else None
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[str], max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int = 0, min_new_tokens: int = 0, adapter: bool = True, stop_at_template: bool = True) -> GenerationResult:
        from vllm import SamplingParams

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        eos = {int(self.tokenizer.eos_token_id)} if self.tokenizer.eos_token_id is not None else set()
        params = SamplingParams(max_tokens=max_new_tokens, min_tokens=min_new_tokens, temperature=temperature,
                                top_p=top_p if temperature > 0 else 1.0, seed=seed, stop_token_ids=sorted(eos))
        lora = None
        if adapter and self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("adapter", 1, self.adapter_dir)
        info = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, engine="vllm")
        if not prompts:
            return GenerationResult([], [], [], 0.0, 0, info)
        began = time.perf_counter()
        outputs = self.llm.generate(list(prompts), params, lora_request=lora, use_tqdm=False)
        seconds = time.perf_counter() - began
        texts, new_tokens, hit_limit, token_ids = [], [], [], []
        for output in outputs:  # vLLM returns requests in the order given
            done = output.outputs[0]
            ids = list(done.token_ids)
            stopped = done.finish_reason == "stop"
            kept = ids[:-1] if stopped and ids and ids[-1] in eos else ids
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            texts.append(cut_at_template(text) if stop_at_template else text.strip())
            token_ids.append(kept)
            new_tokens.append(len(kept) + (1 if stopped else 0))
            hit_limit.append(done.finish_reason == "length")
        return GenerationResult(texts, new_tokens, hit_limit, seconds, len(prompts), info, token_ids)
