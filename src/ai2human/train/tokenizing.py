"""Tokenising pairs for training: response-only labels, over-long examples, the HTML label view.

Why we tokenise ourselves instead of handing TRL a prompt/completion dataset: a dataset that
already holds ``input_ids`` and ``labels`` is used as is by TRL's SFTTrainer (1.15+) *and* by
Unsloth's patched trainer (which switches to a padding collator that keeps our labels), so both
backends train on exactly the tokens and masks the notebook shows. It also lets us count and drop
over-long examples before the trainer sees them, and tokenise the prompt and response in one pass
(tokenising them separately can split the boundary differently from the full text).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from ai2human.data.prompts import format_example, format_prompt
from ai2human.errors import UserError

IGNORE_INDEX = -100  # label value the loss skips (PyTorch's cross-entropy default)
OVERLONG_MODES = ("drop", "truncate")


def tokenize_examples(ai_texts: list[str], human_texts: list[str], tokenizer, train_on_inputs: bool = False) -> list[dict]:
    """Formatted examples as ``input_ids``, ``attention_mask`` and ``labels``, tokenised in batches.

    With ``train_on_inputs = False`` the prompt tokens (instruction + AI text) get label -100, so the
    loss is on the human response and the EOS only: the model learns to write, not to copy.
    """
    prompts = [format_prompt(ai) for ai in ai_texts]
    texts = [format_example(ai, human, tokenizer.eos_token) for ai, human in zip(ai_texts, human_texts)]
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(texts, return_offsets_mapping=True)
        # A token belongs to the response when it ends after the prompt's last character; added
        # special tokens such as a BOS have the empty span (0, 0) and stay in the prompt.
        in_response = [[end > len(p) for _, end in offsets] for p, offsets in zip(prompts, enc["offset_mapping"])]
    else:
        enc = tokenizer(texts)
        n_prompt = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
        in_response = [[i >= n for i in range(len(ids))] for n, ids in zip(n_prompt, enc["input_ids"])]
    out = []
    for ids, resp in zip(enc["input_ids"], in_response):
        ids = list(ids)
        labels = list(ids) if train_on_inputs else [t if r else IGNORE_INDEX for t, r in zip(ids, resp)]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def tokenize_example(ai_text: str, human_text: str, tokenizer, train_on_inputs: bool = False) -> dict:
    """One example as ``tokenize_examples`` makes it."""
    return tokenize_examples([ai_text], [human_text], tokenizer, train_on_inputs)[0]


@dataclass
class TokenizeReport:
    """What ``tokenize_pairs`` did to one split; printed by the notebook, saved in train_metrics.json."""

    split: str
    examples: int
    max_seq_length: int
    overlong: str
    over_max: int = 0  # examples longer than max_seq_length before any cut
    truncated: int = 0
    dropped: int = 0
    kept: int = 0
    lengths: list = field(default_factory=list, repr=False)  # full token length of every example

    @property
    def share_over(self) -> float:
        return self.over_max / self.examples if self.examples else 0.0

    def summary(self) -> str:
        if self.over_max == 0:
            cut = "none is longer"
        elif self.overlong == "drop":
            cut = f"{self.over_max} ({self.share_over:.1%}) are longer and were dropped"
        else:
            cut = f"{self.over_max} ({self.share_over:.1%}) are longer: {self.truncated} truncated"
            if self.dropped:
                cut += f", {self.dropped} dropped (the prompt alone fills max_seq_length)"
        return f"{self.split}: {self.examples} examples, max_seq_length {self.max_seq_length}: {cut}; {self.kept} kept"

    def length_summary(self) -> str:
        """Token-length percentiles of the full examples (prompt + response + EOS)."""
        if not self.lengths:
            return f"{self.split}: no examples"
        import numpy as np

        p50, p90, p99 = np.percentile(self.lengths, [50, 90, 99])
        return f"{self.split} example lengths in tokens: median {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {max(self.lengths)}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("lengths")
        d["share_over"] = round(self.share_over, 4)
        return d


def tokenize_pairs(
    pairs: pd.DataFrame,
    tokenizer,
    max_seq_length: int,
    overlong: str = "drop",
    train_on_inputs: bool = False,
    split: str = "train",
):
    """Tokenise a split of pairs (columns ``ai``, ``human``) into a ``datasets.Dataset``.

    Examples longer than ``max_seq_length`` are dropped (``overlong = "drop"``) or cut at the end
    (``"truncate"``: the cut example loses its EOS, and one whose prompt alone fills the window has
    nothing to learn from and is dropped). Returns ``(dataset, TokenizeReport)``.
    """
    from datasets import Dataset

    if overlong not in OVERLONG_MODES:
        raise UserError(f"overlong must be one of {', '.join(OVERLONG_MODES)}, got {overlong!r}")
    if max_seq_length < 16:
        raise UserError(f"max_seq_length {max_seq_length} is too small to hold the prompt; use 512 or more")
    report = TokenizeReport(split, len(pairs), max_seq_length, overlong)
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    ai, human = pairs["ai"].tolist(), pairs["human"].tolist()
    examples = [ex for i in range(0, len(ai), 1000) for ex in tokenize_examples(ai[i : i + 1000], human[i : i + 1000], tokenizer, train_on_inputs)]
    for ex in examples:
        report.lengths.append(len(ex["input_ids"]))
        if len(ex["input_ids"]) > max_seq_length:
            report.over_max += 1
            if overlong == "drop":
                report.dropped += 1
                continue
            ex = {k: v[:max_seq_length] for k, v in ex.items()}
            if all(label == IGNORE_INDEX for label in ex["labels"]):
                report.dropped += 1
                continue
            report.truncated += 1
        for k in rows:
            rows[k].append(ex[k])
    report.kept = len(rows["input_ids"])
    if report.examples and not report.kept:
        raise UserError(
            f"{split}: all {report.examples} examples are longer than max_seq_length = {max_seq_length} tokens "
            f"(shortest {min(report.lengths)}); raise max_seq_length or set overlong: truncate"
        )
    return Dataset.from_dict(rows), report


def label_counts(example: dict) -> tuple[int, int]:
    """``(masked, trained)`` token counts of one tokenised example."""
    masked = sum(1 for label in example["labels"] if label == IGNORE_INDEX)
    return masked, len(example["labels"]) - masked


def labels_html(example: dict, tokenizer) -> str:
    """The example's decoded text with the masked (no-loss) part greyed and struck through.

    Decoding runs of tokens, not single tokens, keeps multi-byte characters intact.
    """
    parts, run, run_masked = [], [], None
    for token, label in zip(example["input_ids"], example["labels"]):
        masked = label == IGNORE_INDEX
        if run and masked != run_masked:
            parts.append((run_masked, tokenizer.decode(run)))
            run = []
        run.append(token)
        run_masked = masked
    if run:
        parts.append((run_masked, tokenizer.decode(run)))
    spans = [
        f'<span style="color:#999;text-decoration:line-through">{escape(text)}</span>' if masked
        else f'<span style="color:#060;font-weight:600">{escape(text)}</span>'
        for masked, text in parts
    ]
    legend = ('<p><span style="color:#999;text-decoration:line-through">grey: masked (label -100, no loss)</span> · '
              '<span style="color:#060;font-weight:600">green: trained on</span></p>')
    return legend + '<pre style="white-space:pre-wrap">' + "".join(spans) + "</pre>"


def eda_overlong_warning(eda_summary_path: str | Path, max_seq_length: int) -> str:
    """The EDA notebook's warning when ``max_seq_length`` cuts more than 10% of its examples, else "".

    The EDA counted with the tokenizer it was given; a missing or unreadable summary gives "" (this
    notebook counts with its own tokenizer anyway).
    """
    from ai2human.eda.lengths import overlong_warning
    from ai2human.eda.summary import read_summary

    path = Path(eda_summary_path)
    if not path.is_file():
        return ""
    try:
        return overlong_warning(read_summary(path), max_seq_length)
    except (OSError, ValueError, KeyError, TypeError):
        return ""
