"""4-bit linear layers run as dequantize + 16-bit matmul while generating a batch.

bitsandbytes 0.50 multiplies a batch by 4-bit weights in one fused kernel (``gemm_4bit``) that runs
on the CUDA cores, not the tensor cores: measured on an H200 at Qwen2.5-7B shape, a decoding step
took ~1.3 ms more per row of the batch, so tokens/s stopped growing with the batch (430-760 tokens/s
at 100 rows; bench/results, issue 14). Dequantising a weight to 16 bits and multiplying on the tensor
cores costs one pass over the 16-bit weight, whatever the batch. With memory to spare (a large GPU)
the 16-bit copies are made once per ``generate`` call and dropped after it. Under a tight budget (a
T4's 15 GiB) nothing changes: dequantising every weight at every step would add a pass over 13 GiB
per step, and bitsandbytes' kernel reads only the 4-bit weights (unmeasured there: left as it is).

Training is untouched: only the modules' ``forward`` is replaced, inside the ``with`` block.
"""

from __future__ import annotations

import contextlib

# Keep 16-bit copies only when they take at most this share of the free memory: the rest is the KV
# cache's, which is what makes large batches (and so tokens/s) possible.
KEEP_SHARE = 0.25


def _linears_4bit(model) -> list:
    try:
        import bitsandbytes as bnb
    except Exception:  # not installed, or no GPU build: nothing is 4-bit then
        return []
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit) and "forward" not in m.__dict__]


def sixteen_bit_bytes(modules) -> int:
    """Bytes the 16-bit copies of these 4-bit weights would take."""
    total = 0
    for m in modules:
        shape = m.weight.quant_state.shape
        total += 2 * int(shape[0]) * int(shape[1])
    return total


def _forward(module):
    import torch
    from bitsandbytes.functional import dequantize_4bit

    dtype = module.compute_dtype or torch.bfloat16
    weight = dequantize_4bit(module.weight.data, module.weight.quant_state).to(dtype)
    bias = None if module.bias is None else module.bias.to(dtype)

    def forward(x, *args, **kwargs):
        return torch.nn.functional.linear(x.to(dtype), weight, bias).to(x.dtype)

    return forward


@contextlib.contextmanager
def dequantized_linears(model, free: int | None, enabled: bool = True):
    """During the block, every bitsandbytes 4-bit linear layer of ``model`` multiplies in 16 bits.

    Yields ``"kept"`` (16-bit copies made for the block) or ``"off"`` (no 4-bit layers, not enabled,
    no CUDA, or the copies would take more than ``KEEP_SHARE`` of ``free``).
    """
    modules = _linears_4bit(model) if enabled and free is not None else []
    if not modules or sixteen_bit_bytes(modules) > KEEP_SHARE * free:
        yield "off"
        return
    try:
        for m in modules:
            m.forward = _forward(m)
        yield "kept"
    finally:
        for m in modules:
            m.__dict__.pop("forward", None)
