"""The offline tiny model behind the reserved name ``local:tiny-qwen2``.

The demo and the tests must run on a CPU with no hub access, through the same code path as
Qwen2.5-7B. So we build, once per machine, a Qwen2ForCausalLM (same architecture class: GQA,
RoPE, SwiGLU, untied embeddings) with a few layers and random weights, and a byte-level BPE
tokenizer trained on the synthetic sample texts. The ``local:`` prefix cannot be a hub id, so the
demo can never be mistaken for a real model run.

    python -m ai2human.models.tiny   # builds it and prints where it lives
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ai2human.data.prompts import format_example
from ai2human.models.quiet import quiet_loading

TINY_MODEL_NAME = "local:tiny-qwen2"
LOCAL_PREFIX = "local:"
_VERSION = "v2"  # bump when the shape or the tokenizer recipe changes: a new cache folder is built
EOS_TOKEN = "<|endoftext|>"
# A pad token of its own, as Unsloth's Qwen2.5 uploads have: Unsloth refuses a tokenizer whose pad
# is its EOS when no reserved pad token exists to switch to.
PAD_TOKEN = "<|pad|>"

# Small enough that the demo trains in well under a minute on 2 CPU cores; a real Qwen2 otherwise
# (2 KV heads for 4 query heads keeps grouped-query attention in the code path).
TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=1_000_000.0,
    tie_word_embeddings=False,
)
TINY_VOCAB = 2048


def is_local_model(name: str) -> bool:
    return name.startswith(LOCAL_PREFIX)


def cache_dir() -> Path:
    """Where built models live: $AI2HUMAN_CACHE, else ~/.cache/ai2human."""
    return Path(os.environ.get("AI2HUMAN_CACHE", Path.home() / ".cache" / "ai2human"))


def resolve_model_name(name: str) -> str:
    """A name transformers/Unsloth can load: reserved local names become a built folder."""
    if not is_local_model(name):
        return name
    if name != TINY_MODEL_NAME:
        raise ValueError(f"unknown local model {name!r}; the only reserved local model is {TINY_MODEL_NAME!r}")
    return str(build_tiny_model())


def _training_corpus() -> list[str]:
    from ai2human.data.sample import generate_pairs

    # Formatted examples, so the template words and EOS are single tokens as in a real tokenizer.
    return [format_example(p["LLM"], p["human"], EOS_TOKEN) for p in generate_pairs(400, seed=1)]


def build_tiny_model(target: Path | None = None) -> Path:
    """Build the tiny model and tokenizer if missing; return their folder. Deterministic."""
    target = Path(target) if target else cache_dir() / f"tiny-qwen2-{_VERSION}"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary sibling and rename: a concurrent or interrupted build never leaves a
    # half-written model that a later run would try to load.
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        with quiet_loading():  # "Writing model shards" would land in the EDA report's stderr
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(build_tiny_model())
