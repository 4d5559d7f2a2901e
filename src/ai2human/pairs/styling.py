"""Restyle human texts as an instruct model's assistant would write them: the prompts and the call.

The prompt is the instruct model's own chat template (system + user turn, generation prompt
appended), so the model answers as it was tuned to. A tokenizer without a chat template (a base
model, the offline tiny model) gets the project's Alpaca prompt with the styling instruction.
"""

from __future__ import annotations

from dataclasses import dataclass

from ai2human.data.prompts import format_prompt

SYSTEM = "You are a helpful assistant."  # the usual default system turn of instruct models (Qwen2.5's own)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def styling_prompt(tokenizer, text: str, instruction: str) -> str:
    """The prompt that asks for ``text`` in the assistant's style (chat template, else Alpaca)."""
    if not has_chat_template(tokenizer):
        return format_prompt(text, instruction)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{instruction}\n\n{text}"}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass
class Styled:
    """Restyled texts for the rows whose prompt fits; ``fits[i]`` False means row i was not styled."""

    texts: list[str]  # one per input row; "" where the prompt did not fit
    hit_limit: list[bool]
    fits: list[bool]
    chat_template: bool
    generation: object  # the GenerationResult (speed, batch) of the styled rows

    @property
    def styled_rows(self) -> int:
        return sum(self.fits)


def style_texts(model, tokenizer, texts: list[str], instruction: str, max_seq_length: int, max_new_tokens: int,
                temperature: float, top_p: float, batch_size: int = 0, seed: int = 0) -> Styled:
    """Restyle every text whose prompt leaves room for ``max_new_tokens`` in ``max_seq_length``,
    through the evaluation's generation engine (batched, responses only, cut at EOS)."""
    from ai2human.evaluate.generation import generate

    prompts = [styling_prompt(tokenizer, t, instruction) for t in texts]
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]] if prompts else []
    fits = [n + max_new_tokens <= max_seq_length for n in lengths]
    chosen = [p for p, ok in zip(prompts, fits) if ok]
    result = generate(model, tokenizer, chosen, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                      batch_size=batch_size, seed=seed)
    out, limit, it = [""] * len(texts), [False] * len(texts), iter(range(len(chosen)))
    for i, ok in enumerate(fits):
        if ok:
            k = next(it)
            out[i], limit[i] = result.texts[k], result.hit_limit[k]
    return Styled(out, limit, fits, has_chat_template(tokenizer), result)
