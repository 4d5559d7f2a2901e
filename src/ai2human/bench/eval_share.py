"""How much of the fine-tuning cell goes to evaluation passes, at v5's settings (issue 14.4).

    python -m ai2human.bench.eval_share [--shape qwen2.5-7b] [--eval-batch 2,0] [--out FILE]

Trains the params file's run (v5: 20 steps of 8 examples, an evaluation every 20% of the run on
the whole validation split, a checkpoint at each) on a random-weight model of the given shape with
realistic example lengths, once per evaluation batch size (0 = the recipe's auto), through
``recipe.run_training``, and writes each run's time split from ``train_metrics.json``: training
steps, first step, evaluation, the rest, and the eval losses (which must agree across batch sizes:
only the batching of the same examples changes). On a CPU it runs the tiny shape.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from ai2human.bench import data as bench_data
from ai2human.bench import model as bench_model

REPO = Path(__file__).resolve().parents[3]
KEYS = ("per_device_eval_batch_size", "train_call_s", "first_step_s", "train_steps_s", "evaluation_s", "other_s",
        "evaluations", "train_tokens_per_second", "tokens_per_second_whole_call", "first_eval_loss", "final_eval_loss",
        "train_loss", "peak_gpu_memory_gib")


def split_rows(shape: str, msl: int, train_rows: int, eval_rows: int, tokenizer, seed: int) -> tuple[dict, dict]:
    """Realistic-length synthetic training and validation rows (``bench.data``'s log-normal lengths)."""
    rows = []
    for n, offset in ((train_rows, 0), (eval_rows, 1)):
        sample = bench_data.sample_lengths("real", n, msl, seed=seed + offset)
        rows.append(bench_data.synthetic_rows(sample.lengths, (1, len(tokenizer)), tokenizer.eos_token_id, 0.5,
                                              seed=seed + offset, exclude=(tokenizer.pad_token_id,)))
    return rows[0], rows[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ai2human.bench.eval_share", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="", help="model shape (default qwen2.5-7b on a GPU, tiny on a CPU)")
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--params", default=str(REPO / "params" / "v5.yaml"), help="params file, or a JSON of resolved parameters")
    parser.add_argument("--eval-batch", default="2,0", help="comma list of per_device_eval_batch_size values (0 = auto)")
    parser.add_argument("--eval-rows", type=int, default=231, help="validation rows (v5's split of the real data: 231)")
    parser.add_argument("--max-steps", type=int, default=0, help="override the params file's max_steps (tests)")
    parser.add_argument("--max-seq-length", type=int, default=0, help="override the params file's max_seq_length")
    parser.add_argument("--out", default="", help="JSON file for the results (default: print only)")
    args = parser.parse_args(argv)

    import torch
    from datasets import Dataset

    from ai2human.models.hardware import choose_backend, detect_hardware

    def resolve_run(path):
        from ai2human.runner.params import resolve_run as resolve

        return resolve(path)

    cuda = torch.cuda.is_available()
    shape = args.shape or ("qwen2.5-7b" if cuda else "tiny")
    model_dir = Path(args.model_dir) if args.model_dir else bench_model.default_model_dir(shape)
    # A .json file holds parameters already resolved (a machine without the runner's dependencies).
    params = (json.loads(Path(args.params).read_text(encoding="utf-8")) if args.params.endswith(".json")
              else dict(resolve_run(args.params).params))
    params.update({k: v for k, v in (("max_steps", args.max_steps), ("max_seq_length", args.max_seq_length)) if v})
    choice = choose_backend("auto", detect_hardware(), params["load_in_4bit"])  # Unsloth first where it runs
    bench_model.build_model(shape, model_dir)  # after Unsloth's import: building imports transformers
    from ai2human.train import recipe
    from ai2human.train.settings import TrainSettings

    work = Path(tempfile.mkdtemp(prefix="ai2human-eval-share-"))
    base = TrainSettings.from_params(params, run_dir=str(work), choice=choice, model_name=str(model_dir), tokenizer_name="",
                                     report_to="none", resume="never", progress_bars=False)
    model, tokenizer = recipe.load_model_with_lora(base)
    initial = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
    steps = params["max_steps"]
    train, evals = split_rows(shape, params["max_seq_length"], steps * params["per_device_train_batch_size"]
                              * params["gradient_accumulation_steps"], args.eval_rows, tokenizer, params["seed"])
    runs = []
    try:
        for size in [int(s) for s in args.eval_batch.split(",") if s.strip()]:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in initial:
                        param.copy_(initial[name])
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            settings = base.replace(run_dir=str(work / f"eval-batch-{size}"), per_device_eval_batch_size=size)
            start = time.perf_counter()
            result = recipe.run_training(settings, Dataset.from_dict(train), Dataset.from_dict(evals), model=model,
                                         tokenizer=tokenizer, echo=print)
            run = {k: result.metrics.get(k) for k in KEYS}
            run.update(eval_batch_setting=size, run_training_s=round(time.perf_counter() - start, 1),
                       evaluation_share=round(run["evaluation_s"] / run["train_call_s"], 3))
            runs.append(run)
            print(json.dumps(run), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = {"shape": shape, "device": torch.cuda.get_device_name() if cuda else "cpu", "choice": choice.summary(),
           "params_file": Path(args.params).name, "max_steps": steps, "train_rows": len(train["input_ids"]),
           "eval_rows": len(evals["input_ids"]), "runs": runs}
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
