"""The decoding engines behind ``generation.generate``: which one a model gets, and how each runs a batch.

Every engine takes the same left-padded batch and returns the same token ids (prompt + new tokens)
that ``model.generate`` would; they differ only in how fast the decoding loop runs:

- ``plain``: ``model.generate`` with transformers' growing (dynamic) KV cache; every decoding step
  launches hundreds of small kernels from Python, so a 7B model decodes at the speed of the host,
  not of the GPU (issue 14: 26 steps/s on an H200).
- ``static``: transformers' static KV cache, allocated once for prompt + ``max_new_tokens`` instead
  of grown by a copy every step (measured faster on the H200 and on a CPU; docs/benchmarks.md).
- ``unsloth``: Unsloth's fast inference (its own fused decode step); with ``graphs`` its CUDA-graph
  replay of that step too. Unsloth enables the replay only inside its RL trainers and lists Qwen2 as
  untested: on the H200 our greedy tokens matched its eager step token for token, but at the
  evaluation's batch it was no faster (430 vs 438 tokens/s), so it is off unless asked for.

vLLM is the fourth path (``gen_vllm.VllmEngine``, where ``vllm`` is installed): it loads the model
itself, so it is built from a model name and an adapter folder rather than chosen here.

``auto`` picks ``unsloth`` for a model Unsloth loaded (its patched forward ignores transformers'
cache classes) and ``static`` for every other model.
"""

from __future__ import annotations

import contextlib

ENGINES = ("auto", "plain", "static", "unsloth")


def is_unsloth_model(model) -> bool:
    """True when Unsloth patched this model's ``generate`` (directly or under a PEFT wrapper)."""
    modules = model.modules() if hasattr(model, "modules") else [model]
    return any("_old_generate" in getattr(m, "__dict__", {}) for m in modules)


def choose_engine(model, requested: str, device_type: str) -> str:
    """The engine for ``model`` on ``device_type``; ``requested`` other than auto is checked, then kept."""
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {requested!r}")
    unsloth = is_unsloth_model(model)
    if requested == "unsloth" and not unsloth:
        raise ValueError("engine 'unsloth' needs a model loaded with Unsloth (backend unsloth)")
    if requested == "static" and unsloth:
        raise ValueError("engine 'static' needs a transformers model: Unsloth's patched forward ignores the static cache")
    if requested != "auto":
        return requested
    if unsloth:
        return "unsloth"
    return "static"


def engine_kwargs(engine: str, device_type: str) -> dict:
    """Extra ``model.generate`` arguments that select the engine.

    Compilation stays off: transformers refuses it for bitsandbytes 4-bit models anyway, and on other
    models a compile per batch shape (a minute at 7B) is unmeasured against what it saves.
    """
    if engine != "static":
        return {}
    return {"cache_implementation": "static", "disable_compile": True}


@contextlib.contextmanager
def unsloth_decode_graphs(model, enabled: bool = True):
    """Switch on Unsloth's CUDA-graph decode step for ``model`` during the block, then restore.

    The KV buffers are sized for prompt + max_new_tokens up front (one capture per batch, not one per
    256 tokens), and released afterwards so the memory returns to training or the next load.
    """
    if not enabled:
        yield False
        return
    try:
        from unsloth.models import _decode_graphs as graphs
    except Exception:  # an Unsloth without graph replay: its eager fast path still runs
        yield False
        return
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    saved = (graphs.ENABLED, graphs.PREALLOC, set(graphs._SUPPORTED_MODEL_TYPES))
    graphs.ENABLED, graphs.PREALLOC = True, True
    if model_type:
        graphs._SUPPORTED_MODEL_TYPES.add(model_type)
    try:
        yield True
    finally:
        graphs.ENABLED, graphs.PREALLOC = saved[0], saved[1]
        graphs._SUPPORTED_MODEL_TYPES.clear()
        graphs._SUPPORTED_MODEL_TYPES.update(saved[2])
        graphs.release_for_training(model)


def engine_session(model, engine: str, device_type: str, graphs: bool = True):
    """The context one ``generate`` call runs its batches in (Unsloth's graph replay, or nothing)."""
    if engine == "unsloth":
        return unsloth_decode_graphs(model, enabled=graphs and device_type == "cuda")
    return contextlib.nullcontext()
