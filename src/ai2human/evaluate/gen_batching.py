"""How many prompts to generate together: sized from free accelerator memory and prompt lengths.

Decoding a 7B model is bound by reading the weights once per step, whatever the batch, so tokens/s
grows almost linearly with the batch until the KV cache fills the memory left after the weights
(issue 14: 208 tokens/s at a fixed batch of 8 on an H200 that could hold hundreds of sequences).
The automatic batch is therefore the largest that fits: the KV cache of every row at full length
(prompt + ``max_new_tokens``) plus the transient memory of the prefill and of the sampling step,
within a share of what is free, capped where larger batches stopped paying off when measured.
Prompts are sorted longest first, so the first batch is the largest in memory; should the estimate
still be too high, ``generation`` halves the batch on an out-of-memory error and carries on.
"""

from __future__ import annotations

import math

# Share of the free memory the automatic batch may plan to fill: the allocator fragments, and the
# estimate below leaves out small buffers (masks, positions, sampling's sort).
MEMORY_SHARE = 0.8
# Beyond this the decoding step is no longer bound by reading the weights: the batch is then a
# matter of latency per text, not throughput (see docs/benchmarks.md, generation).
MAX_AUTO_BATCH = 256
# A CPU has no memory figure to size from, and padding costs it real FLOPs: on the 2-core CI machine
# the tiny demo model ran fastest at 16 of 4/8/16/32 with the sample's short prompts (1,202 tokens/s),
# at 8 with ~450-token prompts (docs/benchmarks.md); 16 keeps the demo's few prompts in one batch.
CPU_AUTO_BATCH = 16


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """Bytes of K and V that one token keeps in the cache, over all layers."""
    text = getattr(config, "text_config", None) or config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * text.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def row_bytes(config, dtype_bytes: int, prompt_tokens: int, max_new_tokens: int) -> int:
    """Peak memory one row of a batch needs: its KV cache at full length, the prefill's widest
    activation (the MLP's gate and up projections with their product) and fp32 logits for sampling
    (a few copies: processors, softmax and the top-p sort each make one)."""
    text = getattr(config, "text_config", None) or config
    kv = kv_bytes_per_token(config, dtype_bytes) * (prompt_tokens + max_new_tokens)
    prefill = 3 * prompt_tokens * text.intermediate_size * dtype_bytes
    logits = 4 * text.vocab_size * 4
    return kv + prefill + logits


def free_bytes(device) -> int | None:
    """Memory this process may still allocate on ``device`` (None on a CPU).

    A per-process cap (``torch.cuda.set_per_process_memory_fraction``, how a T4's 15 GiB is
    emulated on a larger GPU) is honoured: the device's free memory alone would ignore it.
    """
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    index = device.index if getattr(device, "index", None) is not None else torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    reserved, allocated = torch.cuda.memory_reserved(index), torch.cuda.memory_allocated(index)
    available = free + (reserved - allocated)  # the allocator reuses what it holds but does not use
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    fraction = get_fraction(index) if get_fraction is not None else 1.0
    if fraction < 1.0:
        available = min(available, int(fraction * total) - allocated)
    return max(0, int(available))


def auto_batch_size(config, dtype_bytes: int, prompt_lengths: list[int], max_new_tokens: int,
                    free: int | None, share: float = MEMORY_SHARE, cap: int = MAX_AUTO_BATCH) -> int:
    """The largest batch whose rows, sized by the longest prompt, fit in ``share`` of ``free``.

    ``free`` None means a CPU: ``CPU_AUTO_BATCH``. Never more than the number of prompts, never
    less than 1 (a single row that does not fit is left to fail with the framework's own error).
    """
    n = len(prompt_lengths)
    if n == 0:
        return 1
    if free is None:
        return max(1, min(n, CPU_AUTO_BATCH))
    per_row = row_bytes(config, dtype_bytes, max(prompt_lengths), max_new_tokens)
    fits = int(free * share) // per_row
    return max(1, min(n, cap, fits))


def plan_batches(order: list[int], batch_size: int) -> list[list[int]]:
    """``order`` cut into batches of at most ``batch_size``, as even as possible.

    Ten prompts at a batch of 8 become 5 + 5, not 8 + 2: every batch runs as many decoding steps
    as its longest row, so two half batches cost what one full one does.
    """
    if not order:
        return []
    count = math.ceil(len(order) / batch_size)
    small, extra = divmod(len(order), count)
    plan, start = [], 0
    for k in range(count):  # the first `extra` batches take one row more
        size = small + (k < extra)
        plan.append(order[start : start + size])
        start += size
    return plan
