"""The generation benchmark's results: one file per machine and day, its targets, its report section.

    python -m ai2human.bench.gen_report merge bench/results/DATE-GPU-generation.json $OUT/generation-*.json

merges what ``bench.generation`` wrote on the device (one file per suite) into ``bench/results``;
``python -m ai2human.bench report`` then renders every such file into ``docs/benchmarks.md``
beside the training benchmark (``markdown`` below).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

KIND = "ai2human-generation-bench"
TARGET_TOKENS_PER_S = 1500  # issue 14: ~7x the evaluation's 208 tokens/s, one H200, 7B shape, 4-bit, 512 new tokens
TARGET_ROOFLINE_SHARE = 0.25
T4_EVAL_BUDGET_S = 300  # the whole evaluation notebook in T4 emulation
MATMUL = {"kept": "16-bit copies", "off": "bitsandbytes 4-bit", None: "Unsloth's own"}


def _summarise_lengths(case: dict) -> dict:
    lengths = case.pop("prompt_tokens", None)
    if lengths:
        case["prompt_tokens_stats"] = {"n": len(lengths), "mean": round(statistics.fmean(lengths), 1),
                                       "median": statistics.median(lengths), "max": max(lengths)}
    return case


def merge(paths: list[str | Path], old: dict | None = None) -> dict:
    """One results document from device files (``generation-<suite>.json``); a later suite of the same
    name replaces an earlier one."""
    doc = old or {"kind": KIND, "schema": 1, "suites": {}}
    for path in paths:
        part = json.loads(Path(path).read_text(encoding="utf-8"))
        for worker in part["workers"]:
            worker["cases"] = [_summarise_lengths(c) for c in worker.get("cases", [])]
        gpu = next((w["gpu"] for w in part["workers"] if w.get("gpu")), "cpu")
        doc.update(date=part["date"], gpu=gpu, shape=part["shape"], versions=part["versions"],
                   today_tokens_per_s=part.get("today_tokens_per_s"))
        doc["suites"][part["suite"]] = part["workers"]
    return doc


def cases(doc: dict):
    """(suite, worker, case) for every measured case."""
    for suite, workers in doc.get("suites", {}).items():
        for worker in workers:
            for case in worker.get("cases", []):
                yield suite, worker, case


def _engine_name(worker: dict, case: dict) -> str:
    run = (case.get("runs") or [{}])[-1]
    matmul = MATMUL.get(run.get("dequantize", "off"), run.get("dequantize"))  # before gen_dequant: bitsandbytes
    if not worker.get("gpu"):
        matmul = "unquantised (CPU)"
    if case["engine"] == "unsloth":
        return f"Unsloth fast inference, {'CUDA-graph step' if case.get('graphs', True) else 'eager step'}"
    cache = "static KV cache" if case["engine"] == "static" else "dynamic KV cache"
    return f"transformers + PEFT, {cache}, {matmul}"


def check_targets(doc: dict) -> list[dict]:
    """The issue's targets against the best measured case of each kind."""
    found = []
    auto = [(w, c) for s, w, c in cases(doc) if c.get("batch") == 0 and c.get("prompts") == 100
            and c.get("max_new_tokens") == 512 and not w.get("cap_gib") and "runs" in c]
    if auto:
        worker, best = max(auto, key=lambda wc: wc[1]["tokens_per_second"])
        found.append({"target": f"generated tokens/s at the automatic batch >= {TARGET_TOKENS_PER_S:,}",
                      "value": f"{best['tokens_per_second']:,.0f} ({_engine_name(worker, best)}, batch {best['runs'][-1]['batch_size']})",
                      "met": best["tokens_per_second"] >= TARGET_TOKENS_PER_S})
        share = best.get("roofline_share")
        if share is not None:
            found.append({"target": f"share of the memory-bandwidth roofline >= {TARGET_ROOFLINE_SHARE:.0%}",
                          "value": f"{share:.1%} of {best['roofline']['roofline_tokens_per_s']:,.0f} tokens/s",
                          "met": share >= TARGET_ROOFLINE_SHARE})
    for suite, worker, case in cases(doc):
        if worker.get("cap_gib") and case.get("systems") == 2:
            found.append({"target": f"T4 emulation: the evaluation's generation (100 x 2 systems x up to 512) well inside {T4_EVAL_BUDGET_S} s",
                          "value": f"{case['wall_s']:.0f} s", "met": case["wall_s"] <= T4_EVAL_BUDGET_S * 0.6})
    for suite, workers in doc.get("suites", {}).items():
        for w in workers:
            if w.get("cap_gib") and not any(c.get("systems") == 2 and "runs" in c for c in w.get("cases", [])):
                found.append({"target": f"T4 emulation: the evaluation's generation (100 x 2 systems x up to 512) well inside {T4_EVAL_BUDGET_S} s",
                              "value": f"not finished: {w.get('status')} (load {w.get('load_s')} s)", "met": False})
    return found


def _fmt(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def cases_table(doc: dict) -> str:
    rows = ["| engine | precision | prompts x new tokens | batch | tokens/s | vs 208 | roofline tokens/s | share | peak alloc GiB |",
            "|---|---|---|---|---|---|---|---|---|"]
    today = doc.get("today_tokens_per_s") or 208
    for suite, worker, case in cases(doc):
        if "runs" not in case:
            rows.append(f"| {case['engine']} | {worker['dtype']} | {case['prompts']} x {case['max_new_tokens']} | - | "
                        f"**{case.get('error', 'not run')[:80]}** | | | | |")
            continue
        run = case["runs"][-1]
        precision = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(worker["dtype"], worker["dtype"])
        precision += f", {worker['cap_gib']} GiB cap" if worker.get("cap_gib") else ""
        roof = case.get("roofline") or {}
        ratio = f"{case['tokens_per_second'] / today:.1f}x" if worker.get("gpu") else "-"  # 208 was a GPU figure
        rows.append(f"| {_engine_name(worker, case)} | {precision} | {case['prompts']} x {case['max_new_tokens']}"
                    f"{' x 2 systems' if case.get('systems') == 2 else ''} | {run['batch_size']}{' (auto)' if case.get('batch') == 0 else ''} | "
                    f"{case['tokens_per_second']:,.0f} | {ratio} | "
                    f"{_fmt(roof.get('roofline_tokens_per_s'))} | {_fmt(case.get('roofline_share'), '.1%')} | {_fmt(case.get('peak_alloc_gib'), '.1f')} |")
    return "\n".join(rows)


def equivalence_lines(doc: dict) -> list[str]:
    out = []
    for suite, workers in doc.get("suites", {}).items():
        for w in workers:
            eq = w.get("equivalence")
            if not eq:
                continue
            for name, res in eq.items():
                if isinstance(res, dict):
                    out.append(f"- {w['backend']} {w['dtype']}: `{name}` vs `{eq['reference']}`, greedy, {eq['prompts']} prompts x "
                               f"{eq['max_new_tokens']} tokens: {res['identical_rows']} of {res['rows']} identical; first differing "
                               f"token per row {res['first_difference']}")
    return out


def markdown(docs: list[tuple[Path, dict]]) -> str:
    out = ["## Generation benchmark", "",
           "`python -m ai2human.bench.generation` (device commands: `scripts/gpu_generation.sh`) times",
           "`evaluate.generation.generate` - what the evaluation, the training preview and the app call - on a",
           "random-weight model in Qwen2.5-7B's exact shape, 4-bit NF4, LoRA r 16 on every linear layer (random B,",
           "so the adapter is really computed), prompts of realistic length from the real Qwen2.5 tokenizer (AI texts",
           "log-normal around 450 tokens), sampling at temperature 0.7 / top-p 0.9 as the evaluation does. Random",
           "weights rarely emit EOS, so every row generates all its new tokens (the worst case).",
           "",
           "Roofline: decoding reads every weight once per step (4.127 bits per 4-bit linear weight with its",
           "double-quantised constants; the 16-bit output head and LoRA: 4.54 GB a step at 7B shape) plus the KV",
           "cache of every row (57,344 bytes per token: 28 layers x K and V x 4 KV heads x 128 x 2 bytes). For the",
           "batches a case ran, time at the datasheet bandwidth (H200: 4.8 TB/s) = sum over steps of those bytes /",
           "bandwidth; roofline tokens/s = tokens generated / that time; share = measured / roofline.",
           "Issue 14's starting point: 208 tokens/s (the evaluation at batch 8 on the same shape and GPU).", ""]
    if not docs:
        return "\n".join(out + ["_No generation results yet: run `scripts/gpu_generation.sh` on the GPU machine._", ""])
    for path, doc in sorted(docs, key=lambda pd: pd[1].get("date", ""), reverse=True):
        v = doc.get("versions") or {}
        out += [f"### {doc.get('date')} · {doc.get('gpu')} (`bench/results/{path.name}`)", "",
                "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "", cases_table(doc), ""]
        eq = equivalence_lines(doc)
        if eq:
            out += ["Greedy tokens of each engine against its reference path:", "", *eq, ""]
        targets = check_targets(doc)
        if targets:
            out += ["| target (issue 14) | measured | met |", "|---|---|---|"]
            out += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in targets]
            out.append("")
        for note in doc.get("notes", []):
            out.append(f"- {note}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def load_all(results_dir: str | Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            found.append((path, doc))
    return found


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) < 3 or args[0] != "merge":
        print("usage: python -m ai2human.bench.gen_report merge RESULTS_JSON DEVICE_JSON...", file=sys.stderr)
        return 2
    target = Path(args[1])
    old = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else None
    doc = merge(args[2:], old)
    target.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{target}: {sum(1 for _ in cases(doc))} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
