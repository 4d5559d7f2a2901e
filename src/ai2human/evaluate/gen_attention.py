"""Decode attention without expanding the KV heads: each row's cache is read once per step, not 7 times.

Qwen2.5-7B has 28 query heads sharing 4 KV heads. With a padding mask (every left-padded batch)
transformers up to 5.17 copies each layer's K and V out to 28 heads (``repeat_kv``) at every decoding
step before calling SDPA: ~1.4 GB written and read per row per step at 7B shape and 1,700 cached
tokens, which is the ~0.7 ms per row per step measured on an H200 (docs/benchmarks.md) and why
tokens/s stopped growing with the batch. Later transformers (``pack_gqa``, 5.24) do what this does:
for a single query token, the query heads of one KV head become that head's "query positions", so
SDPA reads the shared K and V once. Same arithmetic; only the kernel's summation order can differ.

``packed_decode_attention(model)`` switches a model to it for a ``with`` block; with a transformers
that packs on its own it delegates to transformers' SDPA unchanged.
"""

from __future__ import annotations

import contextlib

NAME = "ai2human_sdpa_packed"


def native_packing() -> bool:
    """Whether this transformers packs a single query token itself (``pack_gqa``, e.g. 5.24)."""
    from transformers.integrations import sdpa_attention

    return hasattr(sdpa_attention, "pack_gqa")


def _packed_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    import torch
    from transformers.integrations import sdpa_attention

    groups = getattr(module, "num_key_value_groups", 1)
    if native_packing() or groups == 1 or query.shape[2] != 1 or kwargs.get("position_bias") is not None \
            or (attention_mask is not None and attention_mask.shape[1] != 1):
        return sdpa_attention.sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                                     scaling=scaling, is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    packed = query.reshape(batch, heads // groups, groups, dim)  # head h attends with KV head h // groups
    mask = None if attention_mask is None else attention_mask[:, :, :, : key.shape[2]]
    try:
        out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=mask, dropout_p=dropout,
                                                               scale=scaling, is_causal=False)
    except RuntimeError:  # a layout this backport did not foresee: transformers' own path, slower but right
        return sdpa_attention.sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                                     scaling=scaling, is_causal=is_causal, **kwargs)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register the attention (and SDPA's mask format under the same name) with transformers."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, _packed_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


@contextlib.contextmanager
def packed_decode_attention(model, enabled: bool = True):
    """During the block, a model on SDPA attention decodes with packed KV heads; yields whether it does."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if not enabled or current != "sdpa":
        yield False
        return
    config._attn_implementation = register()
    try:
        yield True
    finally:
        config._attn_implementation = current
