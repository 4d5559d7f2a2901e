"""The training benchmark's report: its tables, the FLOP formula, the README headline, docs/benchmarks.md.

``python -m ai2human.bench report`` calls ``write_report``; the generation benchmark's section comes
from ``bench.gen_report``. Results files, their merging and the targets are ``bench.report``'s.
"""

from __future__ import annotations

from pathlib import Path

from ai2human.bench.report import (BACKEND_NAMES, HEADLINE_END, HEADLINE_START, P100_EPOCH_HOURS, PRECISION_NAMES,
                                   REFERENCE, T4_TFLOPS, _find, _ok, backend_name, best_realistic, check_targets,
                                   load_all, loss_agreement, precision_name)


# ---------------------------------------------------------------- markdown

def _fmt(value, spec: str = "", none: str = "-") -> str:
    if value is None:
        return none
    return format(value, spec) if spec else str(value)


def runs_table(doc: dict) -> str:
    head = ("| case | backend | precision | batch x accum | status | s/step | tokens/s all | tokens/s non-pad | padding "
            "| peak alloc / reserved GiB | MFU measured / datasheet peak | load s | first step s | epoch loss |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in doc.get("runs", []):
        mfu = (f"{r['mfu_measured_peak']:.1%} / {r['mfu_datasheet_peak']:.1%}"
               if r.get("mfu_measured_peak") is not None and r.get("mfu_datasheet_peak") is not None
               else (f"{r['mfu_datasheet_peak']:.1%} (datasheet)" if r.get("mfu_datasheet_peak") is not None else "-"))
        mem = (f"{r.get('peak_alloc_gib')} / {r.get('peak_reserved_gib')}" if r.get("peak_reserved_gib") is not None else "-")
        lines.append(
            f"| {r['case']} | {backend_name(r)} | {precision_name(r)} "
            f"| {r.get('batch_size')} x {r.get('grad_accum')} | {r.get('status')} | {_fmt(r.get('s_per_step'), '.2f')} "
            f"| {_fmt(r.get('tokens_per_s'), ',.0f')} | {_fmt(r.get('nonpad_tokens_per_s'), ',.0f')} "
            f"| {_fmt(r.get('padding_share'), '.0%')} | {mem} | {mfu} | {_fmt(r.get('load_s'), '.0f')} "
            f"| {_fmt(r.get('first_step_s'), '.1f')} | {_fmt(r.get('loss_token_mean'), '.4f')} |"
        )
    return "\n".join(lines)


def reference_table(doc: dict) -> str:
    lines = ["| case | backend | precision | reference s/step | measured | reference tokens/s | measured | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for (backend, precision, case), (sps, tps, _, _) in REFERENCE.items():
        run = _find(doc, backend, precision, case)
        got = run.get("nonpad_tokens_per_s") if _ok(run) else None
        lines.append(f"| {case} | {BACKEND_NAMES[backend]} | {PRECISION_NAMES[precision]} | {sps} "
                     f"| {_fmt(run.get('s_per_step') if _ok(run) else None, '.2f')} | {tps:,} | {_fmt(got, ',.0f')} "
                     f"| {_fmt(got / tps if got else None, '.2f')} |")
    return "\n".join(lines)


def levers_table(doc: dict) -> str:
    base = _find(doc, "unsloth", "native", "real-pad")
    rows = [r for r in doc.get("runs", []) if r["backend"] == "unsloth" and r["precision"] == "native" and r.get("regime") == "real"]
    if not rows:
        return "_No realistic-length runs yet._"
    lines = ["| case | what it changes | status | non-pad tokens/s | vs real-pad | padding | micro-batches / step "
             "| peak reserved GiB | epoch loss rel. diff | same trained tokens |", "|---|---|---|---|---|---|---|---|---|---|"]
    what = {"pad": "v5: random pairs padded to the longer", "padfree": "padding_free: each micro-batch concatenated",
            "packing": "packing: examples packed into 2048-token rows (fewer steps)",
            "grouped": "length-grouped sampling (steps of similar lengths)",
            "rebalance": "each step's 8 random examples regrouped by length (the same examples per step as v5)"}
    for r in sorted(rows, key=lambda r: -(r.get("nonpad_tokens_per_s") or 0)):
        agree = loss_agreement(doc, r) if r["case"] != "real-pad" else {}
        speed = (r["nonpad_tokens_per_s"] / base["nonpad_tokens_per_s"]) if _ok(r) and _ok(base) else None
        lines.append(f"| {r['case']} | {what.get(r.get('batching'), '')}, micro-batch {r.get('batch_size')} x {r.get('grad_accum')} "
                     f"| {r.get('status')} | {_fmt(r.get('nonpad_tokens_per_s'), ',.0f')} | {_fmt(speed, '.2f')}x "
                     f"| {_fmt(r.get('padding_share'), '.0%')} | {_fmt(r.get('microbatches_per_step'))} "
                     f"| {_fmt(r.get('peak_reserved_gib'))} | {_fmt(agree.get('loss_rel_diff'), '.2%')} "
                     f"| {_fmt(agree.get('same_trained_tokens'))} |")
    return "\n".join(lines)


FORMULA = """Model FLOPs per optimizer step are counted from the batches the trainer actually ran (every
forward's non-padding tokens and its examples' lengths), as PaLM's MFU and Unsloth's
`utils/mfu.py` count them. With the base frozen there is no weight-gradient matmul for it, so for
`N` = matmul parameters (q, k, v, o, gate, up, down of every layer, plus the output head; the
embedding is a lookup):

    FLOPs = (4 N + 6 r sum(in + out over LoRA layers)) x non-padding tokens
            + 12 x layers x hidden x sum over examples of L (L + 1) / 2

(forward 2N, input gradients 2N; each LoRA pair forward, input and weight gradients; attention
4 x layers x heads x head_dim FLOPs per causal query-key pair in the forward, x 3 with the backward.)
For shape {shape}, N = {n_b:.2f} B, so 4N = {lin:.1f} GFLOP per token; LoRA r = {r} on all seven projections
adds {lora:.2f} GFLOP; attention adds {attn:.2f} MFLOP per causal pair ({full_row:.2f} GFLOP per token on a
full {msl}-token row). Padding is not counted. Gradient checkpointing recomputes each layer's
forward ({recompute:.1f} GFLOP per token more): that is in the hardware FLOPs (HFU, in the JSON), not in MFU.
MFU is given against the dense bf16 matmul rate measured on the same GPU (an 8192^3 product) and
against the datasheet's dense 16-bit figure."""


def formula_text(doc: dict) -> str:
    f = doc.get("flops") or {}
    if not f:
        return ""
    msl = (doc.get("settings") or {}).get("max_seq_length", 2048)
    per_full_row = f["attention_per_pair"] * msl * (msl + 1) / 2 / msl
    return FORMULA.format(
        shape=doc.get("shape_name", "qwen2.5-7b"),
        n_b=f["matmul_params"] / 1e9,
        lin=f["linear_per_token"] / 1e9,
        r=(doc.get("settings") or {}).get("lora_r", "?"),
        lora=f["lora_per_token"] / 1e9,
        attn=f["attention_per_pair"] / 1e6,
        full_row=per_full_row / 1e9,
        msl=msl,
        recompute=f["recompute_per_token"] / 1e9,
    )


def headline(doc: dict) -> str:
    """One paragraph for the README: the full-row rate, the best realistic rate, the T4 fit, an epoch."""
    parts = []
    full = _find(doc, "unsloth", "native", "full-pad")
    gpu = doc.get("gpu", "?")
    if _ok(full):
        parts.append(f"Qwen2.5-7B QLoRA (v5 settings) trains at {full['nonpad_tokens_per_s']:,.0f} tokens/s on full "
                     f"2048-token rows with Unsloth on one {gpu} ({full['s_per_step']:.2f} s per 8-row step, "
                     f"{full.get('peak_reserved_gib')} GiB peak reserved)")
    best = best_realistic(doc)
    if best:
        parts.append(f"{best['nonpad_tokens_per_s']:,.0f} tokens/s on realistic lengths with {best['case']}")
    fits = [BACKEND_NAMES[b] for b in ("unsloth", "hf") if (_find(doc, b, "t4", "full-pad") or {}).get("status") == "ok"]
    if fits:
        parts.append(f"fits a T4's 15 GiB in fp16 ({', '.join(fits)})")
    epoch = next((t for t in check_targets(doc) if t["target"].startswith("an epoch")), None)
    if epoch:
        parts.append(f"an epoch of 3000 rows: {epoch['value']} (the original: {P100_EPOCH_HOURS:g} h on a P100)")
    return "; ".join(parts) + "." if parts else ""


def markdown(docs: list[tuple[Path, dict]]) -> str:
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m ai2human.bench report` from `bench/results/*.json`; do not edit by hand.",
        "",
        "## Training benchmark",
        "",
        "`python -m ai2human.bench train` builds a random-weight model with Qwen2.5-7B's exact shape (random weights",
        "cost the same compute and memory as trained ones) and trains it through the fine-tuning notebook's own",
        "functions (`models.load_model`, `models.add_lora`, `training.build_sft_config`, `training.build_trainer`)",
        "with the v5 settings of `params/v5.yaml`: QLoRA 4-bit, LoRA r 16 on q/k/v/o/gate/up/down, batch 2 x",
        "gradient accumulation 4, `max_seq_length` 2048, `paged_adamw_32bit`, Unsloth gradient checkpointing.",
        "Each backend runs in its own process, one after the other on the same GPU. The benchmark differs from a",
        "notebook run only where throughput is not concerned: a log record every step, no evaluation, no",
        "checkpoints, no tracking, and the case's batching. `scripts/gpu_bench.sh` holds the device commands.",
        "",
        "Cases are `REGIME-BATCHING[-bN]`. Regimes: `full` = every row 2048 tokens (worst case, no padding);",
        "`real` = one epoch over 160 examples whose lengths follow the original EDA (log-normal, median ~1000",
        "tokens, 12% above 2048, those dropped as the notebook drops them; or an `eda_summary.json`'s lengths);",
        "`epoch` = 3000 such rows. Batchings: `pad` (v5: random micro-batches padded to their longest),",
        "`padfree` (`padding_free`), `packing`, `grouped` (length-grouped sampling), `rebalance` (each step's",
        "random examples regrouped into micro-batches of similar length: every step trains on the same examples as",
        "with `pad`; the gradient is the same where the loss is token-weighted over the step, and close to it where",
        "each micro-batch's loss is a mean, which Unsloth reports it falls back to here).",
        "`-bN` sets the micro-batch size with the accumulation adjusted to keep 8 examples per step.",
        "s/step and tokens/s are steady state (the first steps, which compile, are left out and reported as",
        "'first step'; only a backend's first case pays the compilation, later cases in the same process reuse it);",
        "'tokens/s all' counts padding, 'non-pad' does not. Memory is PyTorch's peak over the training of that",
        "case (model included; the paged optimizer's managed memory and Unsloth's offloaded activations are outside",
        "PyTorch's count). The epoch loss is the mean of the per-step losses weighted by",
        "trained tokens: over one epoch every batching sees the same examples, so it must agree; with random",
        "weights it cannot fall, so it checks the same tokens get the same loss, not learning. The isolation",
        "check compares each example's loss alone with its loss inside a packed row.",
        "",
    ]
    if not docs:
        out += ["_No results yet: run `scripts/gpu_bench.sh` on the GPU machine, then `python -m ai2human.bench report --add FILE`._", ""]
    for path, doc in sorted(docs, key=lambda pd: pd[1].get("date", ""), reverse=True):
        m, v, s = doc.get("machine") or {}, doc.get("versions") or {}, doc.get("settings") or {}
        peaks = doc.get("peaks") or {}
        measured = peaks.get("measured") or {}
        out += [
            f"### {doc.get('date')} · {doc.get('gpu')} (`bench/results/{path.name}`)",
            "",
            f"Device: {doc.get('gpu')}, {m.get('gpu_memory_gib', '?')} GiB, driver {m.get('driver', '?')}, CUDA {m.get('cuda', '?')}; "
            f"{m.get('cpu_count', '?')} CPU cores. Measured dense matmul: bf16 {_fmt(measured.get('bfloat16'))} TFLOP/s, "
            f"fp16 {_fmt(measured.get('float16'))} TFLOP/s; datasheet {_fmt(peaks.get('datasheet'))} TFLOP/s.",
            "",
            "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
            "",
            f"Settings: shape {doc.get('shape_name')}, max_seq_length {s.get('max_seq_length')}, LoRA r {s.get('lora_r')} alpha "
            f"{s.get('lora_alpha')}, {s.get('optim')}, gradient checkpointing {s.get('gradient_checkpointing')}, "
            f"lr {s.get('learning_rate')}; full: {s.get('steps')} steps; steady state skips the first {s.get('skip_steps')}.",
            "",
        ]
        for regime, info in (s.get("lengths") or {}).items():
            if regime != "full" and info.get("rows"):
                out.append(f"- `{regime}` lengths: {info['rows']} rows ({_fmt(info.get('dropped'))} of {_fmt(info.get('drawn'))} "
                           f"drawn were longer than max_seq_length and dropped), median {_fmt(info.get('median'), '.0f')}, "
                           f"mean {_fmt(info.get('mean'), '.0f')}, p90 {_fmt(info.get('p90'), '.0f')} tokens, "
                           f"{_fmt(info.get('tokens'), ',')} tokens in all; source: {info.get('source')}")
        out += ["", runs_table(doc), ""]
        problems = [r for r in doc.get("runs", []) if r.get("status") != "ok"]
        for r in problems:
            out.append(f"- {r['backend']}/{r['precision']}/{r['case']}: **{r.get('status')}** {str(r.get('error', ''))[:300]}")
        iso = [(g["backend"], g["precision"], g.get("isolation")) for g in doc.get("groups", []) if g.get("isolation")]
        for backend, precision, res in iso:
            if "error" in res:
                out.append(f"- isolation check ({backend}/{precision}): error {res['error'][:200]}")
            else:
                out.append(f"- isolation check ({backend}/{precision}): packed vs alone max relative loss difference "
                           f"{res['max_rel_diff_packed']:.2e}; control without position restarts {res['max_rel_diff_continuous']:.2e}")
        targets = check_targets(doc)
        out += ["", "#### Targets (issue 8)", ""]
        out += ["| target | measured | met |", "|---|---|---|"] if targets else ["_No target cases in these results._"]
        for t in targets:
            out.append(f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |")
        out += ["", "#### Realistic lengths: the levers tried (Unsloth, bf16)", "", levers_table(doc), "",
                "#### Against the reference probes", "", reference_table(doc), ""]
        projection = [t for t in check_targets(doc) if "T4 projection" in t["value"]]
        if projection:
            out += ["The T4 time is a projection, not a measurement: this GPU's time scaled by the ratio of the two cards'",
                    f"datasheet dense 16-bit rates ({_fmt(peaks.get('datasheet'))} / {T4_TFLOPS:g} TFLOP/s). A T4 usually reaches a",
                    "smaller share of its peak (70 W power cap), so expect longer.", ""]
        formula = formula_text(doc)
        if formula:
            out += ["#### FLOP count", "", formula, ""]
    return "\n".join(out).rstrip() + "\n"


def write_report(results_dir: str | Path, doc_path: str | Path, readme: str | Path | None = None) -> str:
    """Regenerate ``doc_path`` from every results file; refresh the README's headline block if it has one."""
    from ai2human.bench import gen_report, stage_report

    docs = load_all(results_dir)
    Path(doc_path).parent.mkdir(parents=True, exist_ok=True)
    Path(doc_path).write_text(markdown(docs) + "\n" + gen_report.markdown(gen_report.load_all(results_dir)) + "\n"
                              + stage_report.markdown(stage_report.load_all(results_dir)), encoding="utf-8")
    text = ""
    if docs:
        newest = max(docs, key=lambda pd: pd[1].get("date", ""))[1]
        text = headline(newest)
    if readme and text:
        path = Path(readme)
        content = path.read_text(encoding="utf-8")
        if HEADLINE_START in content and HEADLINE_END in content:
            before, rest = content.split(HEADLINE_START, 1)
            _, after = rest.split(HEADLINE_END, 1)
            path.write_text(f"{before}{HEADLINE_START}\n{text} See [docs/benchmarks.md](docs/benchmarks.md).\n{HEADLINE_END}{after}",
                            encoding="utf-8")
    return text
