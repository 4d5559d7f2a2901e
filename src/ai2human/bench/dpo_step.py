"""The preference stage's cost at 7B shape: sampling k rewrites per input, then DPO steps at full length.

    python -m ai2human.bench.dpo_step MODEL_DIR OUT_JSON [--k 4] [--inputs 4] [--steps 3] [--max-length 2048]

Loads ``MODEL_DIR`` (``bench.v5_run model``: Qwen2.5-7B's shape, random weights, the real tokenizer)
the way the prefer notebook loads its policy (``models.loading``: the backend ``auto`` picks, 4-bit,
a LoRA of v5's shape on every linear layer), samples ``k`` rewrites for a few inputs with
``prefer.sampling.sample_rewrites``, then trains ``prefer.dpo.build_dpo_trainer`` on synthetic pairs
whose prompt + response fill ``max_length`` tokens (the worst case a 2048-token run meets) and records
seconds per DPO step (steady, and the first) and PyTorch's peak memory. Under scripts/t4_emulation
(``AI2HUMAN_T4_EMULATION=15``) the process computes in fp16 within 15 GiB, as on a T4. A fresh
adapter costs what the SFT adapter costs: the benchmark needs no fine-tuning run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

V5_LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
           "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def _texts_of(tokenizer, n_tokens: int, seed: int) -> str:
    """A text of about ``n_tokens`` tokens made of the synthetic sample's essays (real English)."""
    from ai2human.data.sample import generate_pairs

    text = " ".join(pair["human"] for pair in generate_pairs(rows=40, seed=seed))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


def synthetic_pairs(tokenizer, n: int, max_length: int):
    """``n`` DPO pairs whose prompt takes half of ``max_length`` and each response the rest."""
    import pandas as pd

    from ai2human.data.prompts import format_prompt

    half = max_length // 2 - 16  # room for the prompt template and EOS
    return pd.DataFrame([{"prompt": format_prompt(_texts_of(tokenizer, half - 80, 2 * i)),
                          "chosen": _texts_of(tokenizer, half, 2 * i + 1),
                          "rejected": _texts_of(tokenizer, half, 2 * i + 2)} for i in range(n)])


def measure(model_dir: str, k: int, inputs: int, steps: int, max_length: int, new_tokens: int, backend: str = "auto",
            save=lambda doc: None, accumulation: int = 4) -> dict:
    """The figures in the module docstring; ``save(doc)`` is called after each phase and each DPO step,
    so a device call cut off at its time limit still returns what was measured."""
    from ai2human.models.hardware import choose_backend, detect_hardware

    choice = choose_backend(backend, detect_hardware(), load_in_4bit=True)  # Unsloth first where it runs
    import torch
    from transformers import TrainerCallback

    from ai2human.models.loading import add_lora, load_model
    from ai2human.prefer.dpo import DpoSettings, build_dpo_trainer
    from ai2human.prefer.sampling import sample_rewrites

    cuda = torch.cuda.is_available()
    began = time.perf_counter()
    model, tokenizer = load_model(model_dir, choice, max_length)
    model = add_lora(model, choice, gradient_checkpointing="unsloth", seed=3407, **V5_LORA)
    out = {"backend": choice.backend, "dtype": choice.dtype, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
           "load_s": round(time.perf_counter() - began, 1), "lora_r": V5_LORA["r"], "k": k, "sample_inputs": inputs,
           "max_length": max_length, "phase": "loaded"}
    save(out)

    sources = [_texts_of(tokenizer, 450, 100 + i) for i in range(inputs)]  # AI texts of the evaluation's length
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    samples = sample_rewrites(model, tokenizer, sources, k, max_length, new_tokens, temperature=1.0, top_p=1.0,
                              backend=choice.backend, seed=0)
    out.update(sample_tokens_per_second=round(samples.generation.tokens_per_second, 1),
               sample_batch=samples.generation.batch_size, sample_new_tokens=new_tokens,
               sample_peak_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None, phase="sampled")
    save(out)

    pairs = synthetic_pairs(tokenizer, accumulation * (steps + 1), max_length)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            out.update(phase=f"dpo step {len(stamps)}", step_end_s=[round(t - start, 2) for t in stamps],
                       peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None)
            save(out)

    with tempfile.TemporaryDirectory() as scratch:
        settings = DpoSettings(choice=choice, output_dir=scratch, max_steps=steps, max_length=max_length,
                               per_device_train_batch_size=1, gradient_accumulation_steps=accumulation)
        trainer = build_dpo_trainer(model, tokenizer, pairs, settings, callbacks=(Clock(),))
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        trainer.train()
    steady = [b - a for a, b in zip(stamps, stamps[1:])]
    out.update(pairs=len(pairs), batch=settings.per_device_train_batch_size, accumulation=settings.gradient_accumulation_steps,
               beta=settings.beta, steps=len(stamps), first_step_s=round(stamps[0] - start, 2) if stamps else None,
               seconds_per_step=round(sum(steady) / len(steady), 2) if steady else None,
               peak_allocated_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
               peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None,
               final_loss=next((r["loss"] for r in reversed(trainer.state.log_history) if "loss" in r), None), phase="done")
    save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--accumulation", type=int, default=4, help="pairs per DPO step (batch 1); v5-dpo.yaml uses 8")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    def save(doc: dict) -> None:
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        # One line per phase in the log: a call cut off at its limit still shows where the time went.
        print(f"[dpo_step {time.perf_counter() - began:7.1f} s] {doc['phase']}", file=sys.stderr, flush=True)

    doc = measure(args.model_dir, args.k, args.inputs, args.steps, args.max_length, args.new_tokens, args.backend, save,
                  args.accumulation)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
