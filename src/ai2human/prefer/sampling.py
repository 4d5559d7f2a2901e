"""Several sampled rewrites per input, scored with the reward: the raw material of preference pairs.

Each input's Alpaca prompt (``data.prompts.format_prompt``, as in training and evaluation) is
repeated ``k`` times and sent through the evaluation's generation engine in one call, so the
samples of all inputs share batches; sampling (temperature > 0) makes the ``k`` copies differ.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from ai2human.data.prompts import format_prompt

SAMPLE_COLUMNS = ["input", "sample", "source", "prompt", "output", "hit_limit"]


@dataclass
class Samples:
    """One row per sample (``SAMPLE_COLUMNS``), input-major; inputs whose prompt leaves no room for
    ``max_new_tokens`` in ``max_seq_length`` are not sampled and counted in ``skipped``."""

    frame: pd.DataFrame
    skipped: int
    generation: object  # evaluate.generation.GenerationResult: speed and batch of the call

    @property
    def inputs(self) -> int:
        return int(self.frame["input"].nunique()) if len(self.frame) else 0


@contextmanager
def generation_mode(model, backend: str):
    """The policy set up to generate, then back as it was: Unsloth swaps kernels between training
    and inference (``for_inference`` / ``for_training``); a plain model only needs ``eval()``."""
    was_training = model.training
    if backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    try:
        yield model
    finally:
        if backend == "unsloth" and was_training:
            from unsloth import FastLanguageModel

            FastLanguageModel.for_training(model)
        if was_training:
            model.train()


def sample_rewrites(model, tokenizer, sources: list[str], k: int, max_seq_length: int, max_new_tokens: int,
                    temperature: float, top_p: float, batch_size: int = 0, seed: int = 0, backend: str = "hf") -> Samples:
    """``k`` rewrites of each source that fits, with whether each hit ``max_new_tokens``."""
    from ai2human.evaluate.generation import generate

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sources = [str(s) for s in sources]
    prompts = [format_prompt(s) for s in sources]
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]] if prompts else []
    fitting = [i for i, n in enumerate(lengths) if n + max_new_tokens <= max_seq_length]
    rows = [(i, j) for i in fitting for j in range(k)]
    with generation_mode(model, backend):
        result = generate(model, tokenizer, [prompts[i] for i, _ in rows], max_new_tokens=max_new_tokens,
                          temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed)
    frame = pd.DataFrame({
        "input": [i for i, _ in rows],
        "sample": [j for _, j in rows],
        "source": [sources[i] for i, _ in rows],
        "prompt": [prompts[i] for i, _ in rows],
        "output": result.texts,
        "hit_limit": [bool(h) for h in result.hit_limit],
    }, columns=SAMPLE_COLUMNS)
    return Samples(frame, len(sources) - len(fitting), result)


def score_samples(reward, embedder, samples: Samples) -> pd.DataFrame:
    """``samples.frame`` with the reward's columns beside each sample (``reward``, its factors, the
    strict ``score``/``success``). Meaning is judged among all sampled inputs at once, as the
    evaluation judges among its inputs."""
    frame = samples.frame.reset_index(drop=True)
    if frame.empty:
        return frame.assign(reward=pd.Series(dtype=float))
    scored = reward.score(embedder, frame["source"].tolist(), frame["output"].tolist(), frame["hit_limit"].tolist())
    return pd.concat([frame, scored.reset_index(drop=True)], axis=1)
