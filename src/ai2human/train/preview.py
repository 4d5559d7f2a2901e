"""The before/after preview: base and fine-tuned rewrites of a few validation inputs.

It runs after the adapter is saved (``recipe.run_training`` saves it), so a preview that fails
(one 200 KB row allocated 6.4 GB from a 40k-token prompt, issue 16) never costs the trained
adapter; prompts longer than ``max_seq_length`` are left out and the note says so.
"""

from __future__ import annotations

import pandas as pd

from ai2human.data.prompts import format_prompt


def prepare_for_generation(model, choice) -> None:
    """Switch a trained model to generation (Unsloth's fast path; eval mode and the KV cache)."""
    if choice.backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    config = getattr(model, "config", None)
    if config is not None:
        config.use_cache = True


def fitting_prompts(tokenizer, ai_texts: list[str], max_seq_length: int) -> tuple[list[int], str]:
    """Indices of the texts whose prompt fits ``max_seq_length`` tokens, and a note on the others ("" if none)."""
    prompts = [format_prompt(t) for t in ai_texts]
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]] if prompts else []
    keep = [i for i, n in enumerate(lengths) if n <= max_seq_length]
    over = [lengths[i] for i in range(len(lengths)) if i not in keep]
    if not over:
        return keep, ""
    return keep, (f"{len(over)} of {len(prompts)} preview input(s) left out: their prompt ({', '.join(map(str, over))} "
                  f"tokens) is longer than max_seq_length = {max_seq_length}, which the model was trained on")


def before_after(model, tokenizer, pairs: pd.DataFrame, max_new_tokens: int = 256,
                 max_seq_length: int = 0) -> tuple[pd.DataFrame, str]:
    """Base vs fine-tuned rewrites of ``pairs`` next to the human reference, and a note on skipped rows.

    The base model's answers come from the same weights with the LoRA switched off
    (``model.disable_adapter()``), so nothing is loaded twice. With ``max_seq_length`` > 0,
    inputs whose prompt is longer are left out (the note says which share).
    """
    from ai2human.evaluate.generation import generate

    ai = pairs["ai"].tolist()
    keep, note = fitting_prompts(tokenizer, ai, max_seq_length) if max_seq_length > 0 else (list(range(len(ai))), "")
    ai = [ai[i] for i in keep]
    human = [pairs["human"].tolist()[i] for i in keep]
    prompts = [format_prompt(t) for t in ai]
    with model.disable_adapter():
        base = generate(model, tokenizer, prompts, max_new_tokens).texts  # greedy, as the evaluation's temperature 0
    tuned = generate(model, tokenizer, prompts, max_new_tokens).texts
    return pd.DataFrame({"ai": ai, "base": base, "fine_tuned": tuned, "human": human}), note


def format_before_after(table: pd.DataFrame, width: int = 600) -> str:
    """The before/after table as readable text blocks, each text cut to ``width`` characters."""

    def cut(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    blocks = []
    for i, row in enumerate(table.itertuples(index=False), 1):
        blocks.append(
            f"=== example {i} ===\n"
            f"AI input     : {cut(row.ai)}\n"
            f"base model   : {cut(row.base) or '(empty)'}\n"
            f"fine-tuned   : {cut(row.fine_tuned) or '(empty)'}\n"
            f"human (ref.) : {cut(row.human)}"
        )
    return "\n\n".join(blocks)
