"""While a batch is generated, each LoRA layer adds its update in two 16-bit kernels instead of PEFT's seven.

PEFT 0.21's LoRA forward is written for training. At every layer and every decoding step it clones
the base output (for 4-bit layers), casts the input to the adapter's fp32, runs A and then B, scales
the result, casts it back and adds it. That is about seven kernels beside the base matmul, and fp32
copies of the layer's output. Measured on the H200 in T4 emulation
(bench/results/2026-12-01-h200-stages.json):

- At one batch of 12, the fine-tuned pass decoded at 147 tokens/s against the base pass's 250,
  35 ms more per step over Qwen2.5-7B's 196 LoRA layers.
- Its prefill needed about twice the MLP activations. The automatic batch the base pass ran (34
  rows) ran out of memory with the adapter on and halved to 17, so that pass ran at 192-269 tokens/s
  against the base pass's 914.

While generating, the adapter is frozen. Its update is ``(x A^T)(s B)^T``, so this module keeps A
and the scaled B in the activations' dtype for the block. The update is then one matmul plus one
``addmm_`` into the base output:

- two kernels per layer;
- no extra copy of the output, so the memory of a batch is the base model's and ``gen_batching``'s
  estimate holds with or without the adapter.

Within a dtype's rounding the result is PEFT's. The layer's own ``forward`` comes back after the
block, so training is untouched.

Layers are left to PEFT where this path would not be PEFT's result:

- adapters disabled (``model.disable_adapter()``, the base pass), or merged;
- several active adapters;
- a LoRA variant (DoRA and the like);
- dropout in training mode;
- a layer that is not a linear one.
"""

from __future__ import annotations

import contextlib


def _fusable(module) -> str | None:
    """The one adapter whose plain LoRA update ``module`` adds, or None to leave it to PEFT."""
    import torch
    from peft.tuners.lora import LoraLayer

    if not isinstance(module, LoraLayer) or "forward" in module.__dict__:
        return None
    if module.disable_adapters or module.merged:
        return None
    active = [name for name in module.active_adapters if name in module.lora_A]
    if len(active) != 1:
        return None
    name = active[0]
    if name in getattr(module, "lora_variant", {}):
        return None
    if not isinstance(module.lora_A[name], torch.nn.Linear) or not isinstance(module.lora_B[name], torch.nn.Linear):
        return None
    dropout = module.lora_dropout[name]
    if module.training and not isinstance(dropout, torch.nn.Identity) and getattr(dropout, "p", 0) > 0:
        return None
    return name


def _forward(module, name: str):
    import torch

    a, b, scaling = module.lora_A[name].weight, module.lora_B[name].weight, module.scaling[name]
    cast: dict = {}  # activations' dtype -> (A, (s B)^T) in that dtype: made once per call of the block

    def forward(x, *args, **kwargs):
        if kwargs.get("adapter_names") is not None:  # PEFT's mixed-batch path: leave it to PEFT
            return type(module).forward(module, x, *args, **kwargs)
        result = module.base_layer(x, *args, **kwargs)
        if result.dtype not in cast:
            cast[result.dtype] = (a.to(result.dtype), (b * scaling).to(result.dtype).t())
        a16, b16 = cast[result.dtype]
        down = torch.nn.functional.linear(x.to(result.dtype), a16)
        down = down.reshape(-1, down.shape[-1])
        if result.is_contiguous():  # in place: no second copy of the output
            result.view(-1, result.shape[-1]).addmm_(down, b16)
            return result
        return torch.addmm(result.reshape(-1, result.shape[-1]), down, b16).view(result.shape)

    return forward


@contextlib.contextmanager
def fused_lora(model, enabled: bool = True):
    """During the block, every fusable LoRA layer of ``model`` adds its update as above.

    Yields how many layers were fused (0: no active LoRA, or not enabled).
    """
    layers = []
    if enabled and hasattr(model, "modules"):
        try:
            layers = [(m, name) for m in model.modules() if (name := _fusable(m)) is not None]
        except ImportError:  # no peft: no LoRA layers either
            layers = []
    try:
        for module, name in layers:
            module.forward = _forward(module, name)
        yield len(layers)
    finally:
        for module, _ in layers:
            module.__dict__.pop("forward", None)
