"""Batched generation for the evaluation, the training preview and the chat app: responses only, tokens/s.

One ``generate`` call turns prompts into responses the way the evaluation needs them: batched with
left padding (so every row's new tokens start at the same column), the prompt stripped, each text
cut at its first EOS, and per text whether it stopped on its own or ran into ``max_new_tokens``.
How large the batches are (``gen_batching``: from free GPU memory, 0 = automatic) and which decoding
loop runs them (``gen_engines``: Unsloth's fast path, a static KV cache, or plain
``model.generate``) are chosen here for the caller; the answers are the same whichever runs.

    python -m ai2human.bench.generation   # tokens/s per engine and batch, against the roofline
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ai2human.data.prompts import RESPONSE_MARKER
from ai2human.evaluate.gen_attention import packed_decode_attention
from ai2human.evaluate.gen_batching import auto_batch_size, free_bytes, plan_batches
from ai2human.evaluate.gen_dequant import dequantized_linears
from ai2human.evaluate.gen_engines import choose_engine, engine_kwargs, engine_session
from ai2human.evaluate.gen_lora import fused_lora

# A base model that does not stop tends to start the next Alpaca block; what follows it is not part
# of its answer. The runaway still shows as hit_limit (no EOS), so nothing is hidden.
TEMPLATE_MARKERS = ("\n### Instruction:", "\n### Input:", "\n" + RESPONSE_MARKER.strip())


@dataclass
class GenerationResult:
    """Responses in prompt order, with what the speed and truncation metrics need."""

    texts: list[str]
    new_tokens: list[int]  # generated tokens per text, up to and including its EOS
    hit_limit: list[bool]  # True: reached max_new_tokens without EOS (the text is truncated)
    seconds: float  # wall time of the generate calls only (no tokenisation or decoding)
    batch_size: int = 1  # the largest batch that ran (a batch of 49 plans 100 prompts as 34 + 33 + 33)
    settings: dict = field(default_factory=dict)
    token_ids: list[list[int]] = field(default_factory=list)  # each response's ids, up to (not incl.) its EOS

    @property
    def tokens_per_second(self) -> float:
        return sum(self.new_tokens) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        """Numbers for ``eval_metrics.json``."""
        return {
            "texts": len(self.texts),
            "new_tokens": int(sum(self.new_tokens)),
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "batch_size": self.batch_size,
            "hit_limit": int(sum(self.hit_limit)),
            **self.settings,
        }


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every id that ends a response: the tokenizer's EOS and the generation config's (may be a list)."""
    ids = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        if value is None:
            continue
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    return {int(i) for i in ids}


def cut_at_template(text: str) -> str:
    """The text before any Alpaca section marker the model starts on its own."""
    for marker in TEMPLATE_MARKERS:
        text = text.split(marker, 1)[0]
    return text.strip()


def _model_device(model):
    import torch

    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")


def _dtype_bytes(model) -> int:
    """Bytes per element of the KV cache: the compute dtype (4-bit weights still cache in 16 bits)."""
    import torch

    dtype = getattr(getattr(model, "config", None), "dtype", None) or getattr(model, "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype.itemsize if isinstance(dtype, torch.dtype) and dtype.is_floating_point else 2


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 0,
    seed: int = 0,
    min_new_tokens: int = 0,
    stop_at_template: bool = True,
    engine: str = "auto",
    graphs: bool = False,
    dequantize: bool | None = None,
    packed_attention: bool = True,
    **generate_kwargs,
) -> GenerationResult:
    """Generate one response per prompt, in batches; results in prompt order.

    ``temperature`` 0 is greedy decoding; above 0 samples with ``top_p``, reproducibly for a given
    ``seed``. ``batch_size`` 0 sizes the batch from free accelerator memory and the prompts' lengths
    (``gen_batching``); prompts are sorted by length so a batch wastes little on padding, and a batch
    that runs out of GPU memory is retried in halves. ``engine`` picks the decoding loop
    (``gen_engines``: auto, plain, static, unsloth; ``graphs`` replays Unsloth's step as CUDA graphs:
    same tokens, no faster at the evaluation's batch when measured, so off by default);
    ``dequantize`` (None: on CUDA, except for Unsloth) runs 4-bit layers as 16-bit matmuls (``gen_dequant``);
    ``packed_attention`` decodes without copying KV heads out per query head (``gen_attention``);
    an active LoRA adds its update in two 16-bit kernels (``gen_lora``; not with Unsloth's own path).
    ``min_new_tokens`` (= ``max_new_tokens``) forces fixed-length outputs for speed benchmarks.
    Extra keyword arguments go to ``model.generate`` unchanged.
    """
    import torch

    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 1, or 0 for automatic, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    device = _model_device(model)
    engine = choose_engine(model, engine, device.type)
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    sampling = temperature > 0
    settings = dict(max_new_tokens=max_new_tokens, do_sample=sampling, pad_token_id=pad_id, eos_token_id=sorted(eos_ids))
    if sampling:
        settings.update(temperature=temperature, top_p=top_p)
    else:  # unset the model's sampling defaults so transformers does not warn on every call
        settings.update(temperature=None, top_p=None, top_k=None)
    if min_new_tokens:
        settings["min_new_tokens"] = min_new_tokens

    info = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, engine=engine)
    if not prompts:
        return GenerationResult([], [], [], 0.0, batch_size or 1, info)
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    texts, new_tokens, hit_limit = [""] * len(prompts), [0] * len(prompts), [False] * len(prompts)
    token_ids: list[list[int]] = [[] for _ in prompts]
    if dequantize is None:  # Unsloth multiplies its 4-bit layers its own way
        dequantize = device.type == "cuda" and engine != "unsloth"
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens of every row then start at the same column
    seconds, largest = 0.0, 0
    try:
        torch.manual_seed(seed)
        with engine_session(model, engine, device.type, graphs), \
                packed_decode_attention(model, enabled=packed_attention and engine != "unsloth") as info["packed_attention"], \
                dequantized_linears(model, free_bytes(device), enabled=dequantize) as info["dequantize"], \
                fused_lora(model, enabled=engine != "unsloth") as info["lora_fused_layers"]:
            if batch_size == 0:  # sized after the 16-bit copies took their memory
                batch_size = auto_batch_size(model.config, _dtype_bytes(model), lengths, max_new_tokens, free_bytes(device))
                info["batch_auto"] = True
            pending = plan_batches(order, batch_size)
            while pending:
                rows = pending.pop(0)
                batch = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True,
                                  add_special_tokens=False).to(device)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                began = time.perf_counter()
                try:
                    with torch.inference_mode():
                        output = model.generate(**batch, **settings, **engine_kwargs(engine, device.type), **generate_kwargs)
                except Exception as exc:
                    if not (_is_out_of_memory(exc) and len(rows) > 1):
                        raise
                    del batch
                    torch.cuda.empty_cache()
                    pending = plan_batches(rows + [i for b in pending for i in b], (len(rows) + 1) // 2)
                    continue
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds += time.perf_counter() - began
                largest = max(largest, len(rows))
                generated = output[:, batch["input_ids"].shape[1] :].tolist()
                for i, ids in zip(rows, generated):
                    stop = next((k for k, t in enumerate(ids) if t in eos_ids), None)
                    kept = ids if stop is None else ids[:stop]
                    token_ids[i] = kept
                    new_tokens[i] = len(ids) if stop is None else stop + 1
                    hit_limit[i] = stop is None and len(ids) >= max_new_tokens
                    text = tokenizer.decode(kept, skip_special_tokens=True)
                    texts[i] = cut_at_template(text) if stop_at_template else text.strip()
    finally:
        tokenizer.padding_side = previous_side
    return GenerationResult(texts, new_tokens, hit_limit, seconds, largest, info, token_ids)
