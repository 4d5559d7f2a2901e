"""FLOP counts of LoRA training on a frozen base, for the benchmark's MFU.

FLOP convention (model FLOPs, as PaLM's MFU and Unsloth's ``utils/mfu.py`` count them), per
non-padding token, for every linear layer of n = in x out weights:

- forward 2n, backward input gradients 2n (gradients flow through the frozen weights to the
  LoRA layers below); no weight-gradient matmul for the frozen base: **4 x matmul parameters**
  (all q/k/v/o/gate/up/down of every layer and the output head; the embedding is a lookup);
- each LoRA pair of rank r on an in x out layer: 2r(in + out) forward, the same for input and
  again for weight gradients: 6r(in + out);
- attention: 4 x layers x heads x head_dim per causal (query, key) pair in the forward (QK^T and
  AV), L(L + 1)/2 pairs for an example of L tokens, x 3 for forward plus backward.

Gradient checkpointing recomputes each layer's forward in the backward pass; those FLOPs are
hardware FLOPs (HFU), not model FLOPs (MFU), and are reported separately.
"""

from __future__ import annotations


def layer_linears(shape: dict) -> dict[str, tuple[int, int]]:
    """``name -> (in, out)`` of one decoder layer's linear layers (Qwen2 / Llama layout)."""
    h, i = shape["hidden_size"], shape["intermediate_size"]
    heads, kv = shape["num_attention_heads"], shape["num_key_value_heads"]
    hd = shape.get("head_dim") or h // heads
    return {
        "q_proj": (h, heads * hd),
        "k_proj": (h, kv * hd),
        "v_proj": (h, kv * hd),
        "o_proj": (heads * hd, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def flop_counts(shape: dict, lora_r: int, lora_targets: list[str]) -> dict:
    """Per-token and per-pair FLOP counts of LoRA training on a frozen base (see the module docstring).

    Returns ``matmul_params`` and, in FLOPs: ``linear_per_token`` (4 x matmul parameters),
    ``lora_per_token``, ``attention_per_pair`` (forward + backward, per causal pair) and the
    checkpointing recompute ``recompute_per_token`` / ``recompute_per_pair`` (HFU only).
    """
    layers = shape["num_hidden_layers"]
    linears = layer_linears(shape)
    unknown = sorted(set(lora_targets) - set(linears))
    if unknown:
        raise ValueError(f"LoRA targets {unknown} are not linear layers of this shape ({', '.join(linears)})")
    layer_params = sum(a * b for a, b in linears.values())
    head_params = shape["hidden_size"] * shape["vocab_size"]
    matmul_params = layers * layer_params + head_params
    lora_size = layers * sum(lora_r * (linears[t][0] + linears[t][1]) for t in lora_targets)
    heads = shape["num_attention_heads"]
    hd = shape.get("head_dim") or shape["hidden_size"] // heads
    attn_fwd_pair = 4 * layers * heads * hd
    return {
        "matmul_params": matmul_params,
        "linear_per_token": 4 * matmul_params,
        "lora_per_token": 6 * lora_size,
        "attention_per_pair": 3 * attn_fwd_pair,
        # Recompute: every layer's forward again (not the output head), LoRA forward included.
        "recompute_per_token": 2 * layers * layer_params + 2 * lora_size,
        "recompute_per_pair": attn_fwd_pair,
    }


def training_flops(counts: dict, tokens: int, pairs: int, checkpointing: bool = True) -> tuple[float, float]:
    """``(model FLOPs, hardware FLOPs)`` for ``tokens`` non-padding tokens holding ``pairs`` causal pairs."""
    model = (counts["linear_per_token"] + counts["lora_per_token"]) * tokens + counts["attention_per_pair"] * pairs
    hardware = model
    if checkpointing:
        hardware += counts["recompute_per_token"] * tokens + counts["recompute_per_pair"] * pairs
    return float(model), float(hardware)


def causal_pairs(lengths) -> int:
    """Causal (query, key) pairs of examples of these lengths: sum of L(L + 1)/2."""
    return int(sum(n * (n + 1) // 2 for n in lengths))
