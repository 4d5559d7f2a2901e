"""Streaming one response: the prompt never shown, stopped at EOS, at a new prompt block, or when
the page goes away (an abandoned request must not hold the model)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator


@dataclass
class StreamState:
    """The response so far; ``stopped`` is set on the last state: eos, template or max_new_tokens."""

    text: str
    new_tokens: int = 0
    stopped: str = ""
    seconds: float = 0.0


def stream_response(model, tokenizer, prompt: str, max_new_tokens: int, temperature: float = 0.0,
                    top_p: float = 1.0) -> Iterator[StreamState]:
    """Generate one response to ``prompt`` and yield it as it grows; the prompt is never part of it.

    ``model.generate`` runs in a thread feeding a ``TextIteratorStreamer`` (skip_prompt). Decoding
    stops at EOS, at ``max_new_tokens``, at an Alpaca block the model starts on its own, or when the
    consumer stops iterating (a closed page), so an abandoned request does not hold the model.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    from ai2human.evaluate.generation import cut_at_template, eos_token_ids

    eos_ids = eos_token_ids(model, tokenizer)
    batch = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(next(model.parameters()).device)
    prompt_len = batch["input_ids"].shape[1]
    stop = threading.Event()
    progress = {"new_tokens": 0}

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            progress["new_tokens"] = input_ids.shape[1] - prompt_len
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    settings = dict(max_new_tokens=max_new_tokens, do_sample=temperature > 0, streamer=streamer,
                    eos_token_id=sorted(eos_ids), stopping_criteria=StoppingCriteriaList([_Stop()]),
                    pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids))
    if temperature > 0:
        settings.update(temperature=temperature, top_p=top_p)
    else:  # greedy: unset the model's sampling defaults so transformers does not warn
        settings.update(temperature=None, top_p=None, top_k=None)
    result: dict = {}

    def work():
        try:
            with torch.inference_mode():
                result["ids"] = model.generate(**batch, **settings)[0, prompt_len:].tolist()
        except BaseException as exc:  # re-raised in the caller; end() so the loop below finishes
            result["error"] = exc
            streamer.end()

    began = time.perf_counter()
    thread = threading.Thread(target=work, name="ai2human-generate", daemon=True)
    thread.start()
    text, stopped = "", ""
    try:
        for piece in streamer:
            text += piece
            kept = cut_at_template(text)
            if kept != text.strip():  # the model began a new "### Instruction:" block
                stopped = "template"
                stop.set()
                text = kept
                break
            yield StreamState(kept, progress["new_tokens"], "", time.perf_counter() - began)
    finally:
        stop.set()  # also when the consumer goes away mid-stream
        thread.join()
    if "error" in result:
        raise result["error"]
    ids = result.get("ids", [])
    if not stopped:
        stopped = "eos" if any(t in eos_ids for t in ids) else "max_new_tokens"
    new_tokens = next((i + 1 for i, t in enumerate(ids) if t in eos_ids), len(ids))
    yield StreamState(cut_at_template(text), new_tokens, stopped, time.perf_counter() - began)
