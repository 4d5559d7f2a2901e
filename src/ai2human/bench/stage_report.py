"""The notebooks' own stages measured on the GPU machine: the section of docs/benchmarks.md for
``bench/results/*-stages.json``.

A stages file holds runs of the user's command (``scripts/gpu_v5_run.sh``: the runner, the real
notebooks, a random-weight model of Qwen2.5-7B's shape with the real tokenizer), each kept as the
summary ``bench.v5_run summary`` wrote, plus the DPO step measurement (``bench.dpo_step``):

    {"kind": "stages", "device": ..., "runs": [{"name", "date", "what", "command", "summary" | "dpo"}]}

T4 projections scale the H200's time by the ratio of the two cards' memory bandwidth (decoding reads
every weight once a step) and say so; they are projections, not measurements.
"""

from __future__ import annotations

import json
from pathlib import Path

H200_BANDWIDTH_TBS = 4.8  # datasheet
T4_BANDWIDTH_TBS = 0.32  # datasheet
T4_BUDGET_S = 300  # issue 14: the evaluation at eval_samples 100 in T4 emulation within 5 minutes
T4_CAP_GIB = 15.0


def load_all(results_dir: str | Path) -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(Path(results_dir).glob("*-stages.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("kind") == "stages":
            docs.append((path, doc))
    return docs


def _n(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _notebooks(summary: dict) -> str:
    rows = [f"| {name} | {entry.get('status', '-')} | {_n(entry.get('wall_s'), '.1f')} |"
            for name, entry in (summary.get("notebooks") or {}).items()]
    return "\n".join(["| notebook | status | wall s |", "|---|---|---|", *rows])


def _training(train: dict, cell_s: float | None) -> list[str]:
    if not train:
        return []
    share = train.get("evaluation_s") / cell_s if cell_s and train.get("evaluation_s") is not None else None
    return [f"- Fine-tuning ({train.get('backend')}, {train.get('dtype')}, {train.get('global_step')} steps): "
            f"{_n(train.get('train_tokens_per_second'))} training tokens/s over training steps only "
            f"({_n(train.get('tokens_per_second_whole_call'))} over the whole train() call); first step "
            f"{_n(train.get('first_step_s'), '.1f')} s; {train.get('evaluations')} evaluation passes "
            f"{_n(train.get('evaluation_s'), '.1f')} s"
            + (f" ({share:.0%} of the fine-tuning notebook's {cell_s:.0f} s)" if share is not None else "")
            + f"; preview {_n(train.get('preview_s'), '.1f')} s; peak {_n(train.get('peak_gpu_memory_gib'), '.2f')} GiB; "
            f"trainable {_n(train.get('trainable_params'))} of {_n(train.get('total_params'))} parameters "
            f"({_n((train.get('trainable_share') or 0) * 100, '.2f')}%)."]


def _evaluation(summary: dict) -> list[str]:
    gen = (summary.get("generation") or {}).get("generation") or {}
    lines = []
    systems = {k: v for k, v in gen.items() if isinstance(v, dict) and "tokens_per_second" in v}
    if systems:
        lines.append("- Evaluation generation: " + "; ".join(
            f"{name} {_n(s.get('tokens_per_second'))} tokens/s ({s.get('texts')} x up to {s.get('max_new_tokens')} "
            f"tokens, batch {s.get('batch_size')}{' auto' if s.get('batch_auto') else ''}, engine {s.get('engine')}, "
            f"{_n(s.get('seconds'), '.0f')} s)" for name, s in systems.items()) + ".")
    zero = (summary.get("generation") or {}).get("zero_shot")
    evaluate_s = ((summary.get("notebooks") or {}).get("evaluate") or {}).get("wall_s")
    if zero:
        lines.append(f"- Fast-DetectGPT and the base model's perplexity: {zero['texts_scored']} distinct texts scored in "
                     f"{zero['seconds']:.1f} s at batch {zero['batch_size']}"
                     + (f", {zero['seconds'] / evaluate_s:.0%} of the evaluation notebook" if evaluate_s else "") + ".")
    cells = (summary.get("cells") or {}).get("03_evaluate") or []
    if cells:
        lines.append("- Slowest evaluation cells: " + "; ".join(f"`{c['cell'][:48]}` {c['seconds']:.0f} s" for c in cells[:4]) + ".")
    return lines


def _takeaways(summary: dict) -> list[str]:
    """The pairs and prefer notebooks' own takeaways: their figures (tokens/s, pairs/min, s per DPO step)."""
    found = [line for name in ("01b_pairs", "02b_prefer") for line in (summary.get("takeaways") or {}).get(name) or []]
    lines = [line.removeprefix("Takeaway: ") for line in found]
    return [f"- {line[:1].upper()}{line[1:]}" for line in lines]


def _dpo(dpo: dict) -> list[str]:
    fits = dpo.get("peak_reserved_gib") is not None and dpo["peak_reserved_gib"] <= T4_CAP_GIB
    return [f"- DPO ({dpo.get('backend')}, {dpo.get('dtype')}, LoRA r {dpo.get('lora_r')}, beta {dpo.get('beta')}): "
            f"{dpo.get('pairs')} pairs of up to {dpo.get('max_length')} tokens, batch {dpo.get('batch')} x accumulation "
            f"{dpo.get('accumulation')}: {_n(dpo.get('seconds_per_step'), '.2f')} s per DPO step (steady; first step "
            f"{_n(dpo.get('first_step_s'), '.1f')} s), peak {_n(dpo.get('peak_allocated_gib'), '.2f')} / "
            f"{_n(dpo.get('peak_reserved_gib'), '.2f')} GiB allocated / reserved: "
            + ("fits" if fits else "**does not fit**") + f" a T4's {T4_CAP_GIB:g} GiB.",
            *( [f"- Sampling k = {dpo['k']} rewrites for {dpo['sample_inputs']} inputs: {_n(dpo.get('sample_tokens_per_second'))} "
                f"tokens/s, peak {_n(dpo.get('sample_peak_gib'), '.2f')} GiB."] if dpo.get("k") else [])]


def markdown(docs: list[tuple[Path, dict]]) -> str:
    if not docs:
        return ""
    out = ["## The notebooks' stages on the GPU machine", "",
           "`scripts/gpu_v5_run.sh` runs the user's command, `python runner/run.py params/v5.yaml` (the real notebooks "
           "through the runner), on a random-weight model of Qwen2.5-7B's exact shape with the real Qwen2.5 tokenizer "
           "and synthetic pairs (`data/sample.py`'s generator); `T4=15` emulates a T4 in every process (fp16 compute, a "
           "15 GiB memory cap). Random weights cost what trained ones cost, but rarely emit EOS, so every generated text "
           "runs to its token cap (the worst case), and every quality number of these runs is meaningless. A T4 "
           f"projection scales decoding time by the memory-bandwidth ratio ({H200_BANDWIDTH_TBS:g} / {T4_BANDWIDTH_TBS:g} "
           "TB/s = 15x): a projection, not a measurement.", ""]
    for path, doc in docs:
        out += [f"### {doc.get('device', '?')} (`bench/results/{path.name}`)", ""]
        if doc.get("versions"):
            out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".", ""]
        for run in doc.get("runs", []):
            out += [f"#### {run.get('date', '')} · {run.get('what', run.get('name'))}", ""]
            if run.get("command"):
                out += [f"`{run['command']}`", ""]
            summary = run.get("summary") or {}
            if summary.get("notebooks"):
                out += [_notebooks(summary), ""]
            finetune_s = ((summary.get("notebooks") or {}).get("finetune") or {}).get("wall_s") or run.get("finetune_wall_s")
            out += _training(summary.get("train") or run.get("train") or {}, finetune_s)
            out += _evaluation(summary) + _takeaways(summary)
            if run.get("dpo"):
                out += _dpo(run["dpo"])
            # A note that starts with "- " continues the one before it as a sub-item.
            out += [f"  {note}" if note.startswith("- ") else f"- {note}" for note in run.get("notes", [])] + [""]
        targets = doc.get("targets") or []
        if targets:
            out += ["| target | measured | met |", "|---|---|---|",
                    *[f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in targets], ""]
    return "\n".join(out)
