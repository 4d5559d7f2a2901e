"""The rewrite page: a Gradio app that serves a trained run the way it was trained and scores each rewrite.

    python -m ai2human.app --run runs/demo                      # a run folder made by the runner
    python -m ai2human.app --adapter PATH [--base MODEL]         # any adapter folder

The model is loaded once at start-up with the evaluation notebook's rules (``choose_backend``:
Unsloth on a capable GPU, transformers + PEFT otherwise, fp32 on a CPU), prompted through
``prompts.format_prompt`` exactly as in training, and only the response is streamed back, cut at
EOS or at an Alpaca block the model starts on its own. Each finished rewrite is scored with the
evaluation's metrics (meaning similarity, the run's detector, added numbers/dates/names), so the
page says how far to trust it. The original work's chat sent the raw message without the
template and echoed the prompt back; both are what this module exists to avoid.

The page's ``/rewrite`` endpoint is public, so ``gradio_client`` can call it too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ai2human.errors import UserError
from ai2human.rundir import ADAPTER, DETECTOR, EVAL_METRICS, MANIFEST
from ai2human.data.prompts import format_prompt

# Gradio must not phone home (no network on CI, and users' texts are none of anyone's business).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

READY_MESSAGE = "Scores for the rewrite will show here."
EMPTY_MESSAGE = "Paste an AI-written text in the box on the left, then press **Rewrite**."
ADDED_LABEL = {"numbers": "added number", "dates": "added date", "names": "added name"}
ADDED_COLORS = {"added number": "#f59e0b", "added date": "#8b5cf6", "added name": "#ef4444"}
CSS = "#scores td:nth-child(2), #scores th:nth-child(2) { white-space: nowrap; }"
# Evaluation parameters the app reads from the run (or, without a manifest, the notebook's defaults).
RUN_PARAMS = ("model_name", "tokenizer_name", "max_seq_length", "backend", "load_in_4bit",
              "max_new_tokens", "temperature", "top_p", "min_similarity")
HEADLINE_METRICS = {
    "judged_human_share": "judged human (detector p >= 0.5)",
    "human_proba_mean": "mean P(human)",
    "similarity_mean": "mean similarity to the input",
    "meaning_drift_share": "meaning drift share",
    "adds_any_share": "adds a number/date/name",
    "truncated_share": "cut at max_new_tokens",
}


# ------------------------------------------------------------------------------------ the run


@dataclass
class RunConfig:
    """Everything the app needs from a run folder (or from ``--adapter``/``--base``)."""

    adapter_dir: Path
    params: dict  # RUN_PARAMS, from the manifest or the evaluation notebook's defaults
    run_dir: Path | None = None
    manifest: dict = field(default_factory=dict)
    eval_metrics: dict = field(default_factory=dict)

    @property
    def detector_path(self) -> Path | None:
        path = self.run_dir / DETECTOR if self.run_dir else None
        return path if path and path.is_file() else None

    @property
    def name(self) -> str:
        return self.manifest.get("run_name") or (self.run_dir.name if self.run_dir else self.adapter_dir.name)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run the notebook that writes it") from None


def _notebook_defaults() -> dict:
    from ai2human.runner.params import declared_parameters

    return {name: p.default for name, p in declared_parameters(["evaluate"]).items() if name in RUN_PARAMS}


def read_run(run_dir: str | Path | None = None, adapter: str | Path | None = None, base: str = "") -> RunConfig:
    """Resolve what to serve without loading anything heavy, so a bad path fails in a second.

    The base model is ``base`` if given, else the run's ``model_name``, else the one recorded in the
    adapter's config; settings come from the run's manifest, else the evaluation notebook's defaults.
    """
    from ai2human.models.loading import adapter_base_model

    manifest, eval_metrics = {}, {}
    if run_dir is not None:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"no run folder at {run_dir}; make one with `python runner/run.py params/demo.yaml`")
        manifest = _read_json(run_dir / MANIFEST)
        eval_metrics = _read_json(run_dir / EVAL_METRICS)
        adapter = Path(adapter) if adapter else run_dir / ADAPTER
        if not (adapter / "adapter_config.json").is_file():
            raise UserError(f"run folder {run_dir} has no adapter ({adapter} holds no adapter_config.json); "
                            "run the fine-tuning notebook first (python runner/run.py PARAMS --only finetune)")
    elif adapter is None:
        raise UserError("say what to serve: --run RUN_FOLDER, or --adapter ADAPTER_FOLDER [--base MODEL]")
    adapter = Path(adapter)
    recorded_base = adapter_base_model(adapter)  # a clear error when the folder is not an adapter
    run_params = manifest.get("params", {})
    params = _notebook_defaults() | {k: run_params[k] for k in RUN_PARAMS if k in run_params}
    params["model_name"] = base or run_params.get("model_name") or recorded_base
    return RunConfig(adapter, params, run_dir, manifest, eval_metrics)


# ------------------------------------------------------------------------------- scoring one text


def score_rewrite(source: str, rewrite: str, embedder, detector=None, min_similarity: float = 0.7) -> dict:
    """The evaluation's per-text metrics for one rewrite, as plain JSON-able values.

    ``detector`` may be None (a run evaluated without one): ``human_proba`` is then None.
    """
    from ai2human.evaluate import metrics

    similarity = float(metrics.similarity(embedder, [source], [rewrite])[0])
    proba = float(detector.predict_human_proba([rewrite])[0]) if detector is not None else None
    added = metrics.added_entities(source, rewrite)
    ratio = float(metrics.length_ratio([source], [rewrite])[0])
    return {
        "similarity": round(similarity, 4),
        "min_similarity": min_similarity,
        "meaning_drift": similarity < min_similarity,
        "human_proba": None if proba is None else round(proba, 4),
        "judged_human": None if proba is None else proba >= metrics.HUMAN_THRESHOLD,
        "added": added,
        "n_added": sum(len(v) for v in added.values()),
        "length_ratio": round(ratio, 3) if ratio == ratio else None,
    }


def highlight_added(text: str, added: dict[str, list[str]]) -> list[tuple[str, str | None]]:
    """``text`` cut into ``(piece, label)`` spans for ``gr.HighlightedText``: each occurrence of an
    added number/date/name gets its label, the rest ``None``. Longer entities win overlaps."""
    spans: list[tuple[int, int, str]] = []
    entities = [(e, ADDED_LABEL[kind]) for kind, items in added.items() for e in items if e]
    for entity, label in sorted(entities, key=lambda e: -len(e[0])):
        for m in re.finditer(rf"(?<!\w){re.escape(entity)}(?!\w)", text):
            if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                spans.append((m.start(), m.end(), label))
    pieces, at = [], 0
    for start, end, label in sorted(spans):
        if start > at:
            pieces.append((text[at:start], None))
        pieces.append((text[start:end], label))
        at = end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def scores_markdown(scores: dict, generation: dict, detector_note: str = "") -> str:
    """The score table shown beside a finished rewrite, with what each number means."""
    sim = scores["similarity"]
    keeps = "meaning drift: check it" if scores["meaning_drift"] else "keeps the meaning"
    if scores["human_proba"] is None:
        proba_text, proba_reading = "n/a", "no detector in this run (the evaluation notebook saves one)"
    else:
        proba_text = _fmt(scores["human_proba"])
        proba_reading = ("judged human" if scores["judged_human"] else "judged AI-written") + " (threshold 0.50)"
        if detector_note:
            proba_reading += f"; detector {detector_note}"
    added = [f"`{e}`" for items in scores["added"].values() for e in items]
    added_reading = ("none: no number, date or name the input lacks" if not added
                     else ", ".join(added) + " (not in the input: check them, highlighted below)")
    stopped = {"eos": "stopped by itself (EOS)", "template": "stopped at a new prompt block",
               "max_new_tokens": "cut at max new tokens: raise it for the rest"}.get(generation.get("stopped"), "")
    ratio = scores["length_ratio"]
    rows = [
        ("similarity to the input", _fmt(sim), f"{keeps} (min_similarity {scores['min_similarity']:.2f})"),
        ("detector P(human)", proba_text, proba_reading),
        ("added numbers, dates, names", str(scores["n_added"]), added_reading),
        ("length", "n/a" if ratio is None else f"{ratio:.2f}x input",
         f"{generation.get('new_tokens', 0)} new tokens in {generation.get('seconds', 0):.1f} s; {stopped}"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return "### Scores\n\n| score | value | reading |\n|---|---|---|\n" + table


# ---------------------------------------------------------------------------------- generating


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


# ------------------------------------------------------------------------------- the app itself


class Rewriter:
    """The loaded model, tokenizer, embedder and detector of one run; ``rewrite`` is the page's handler."""

    def __init__(self, config: RunConfig, model, tokenizer, embedder, detector=None, backend: str = ""):
        self.config, self.model, self.tokenizer = config, model, tokenizer
        self.embedder, self.detector, self.backend = embedder, detector, backend
        self.max_seq_length = int(config.params["max_seq_length"])
        self.min_similarity = float(config.params["min_similarity"])
        roc_auc = config.eval_metrics.get("detector", {}).get("roc_auc")
        self.detector_note = "" if roc_auc is None else f"ROC AUC {float(roc_auc):.2f} on the run's held-out texts"

    def check_length(self, text: str, max_new_tokens: int) -> str:
        """"" when the prompt plus ``max_new_tokens`` fits the run's ``max_seq_length``, else why not."""
        prompt_tokens = len(self.tokenizer(format_prompt(text), add_special_tokens=False)["input_ids"])
        if prompt_tokens + max_new_tokens <= self.max_seq_length:
            return ""
        room = self.max_seq_length - max_new_tokens
        return (f"**Too long for this run.** With the prompt the text is {prompt_tokens} tokens, and the rewrite may "
                f"add up to {max_new_tokens} (max new tokens); the model was trained on at most max_seq_length = "
                f"{self.max_seq_length} tokens in all. Shorten the text (the prompt may use {max(room, 0)} tokens) "
                "or lower max new tokens. Nothing was sent to the model.")

    def rewrite(self, text: str, temperature: float, top_p: float, max_new_tokens: float):
        """Stream ``(rewrite, scores markdown, highlighted spans, scores dict)`` for one text."""
        text = (text or "").strip()
        if not text:
            yield "", EMPTY_MESSAGE, None, {"error": "empty input"}
            return
        # The sliders bound these on the page; an API caller can send anything.
        max_new_tokens, temperature, top_p = max(1, int(max_new_tokens)), max(0.0, float(temperature)), float(top_p)
        too_long = self.check_length(text, max_new_tokens)
        if too_long:
            yield "", too_long, None, {"error": re.sub(r"\*", "", too_long)}
            return
        state = StreamState("")
        for state in stream_response(self.model, self.tokenizer, format_prompt(text), max_new_tokens, temperature, top_p):
            if not state.stopped:
                yield state.text, f"_Rewriting… {state.new_tokens} tokens so far_", None, {}
        generation = {"new_tokens": state.new_tokens, "stopped": state.stopped, "seconds": round(state.seconds, 2),
                      "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        scores = score_rewrite(text, state.text, self.embedder, self.detector, self.min_similarity)
        yield (state.text, scores_markdown(scores, generation, self.detector_note),
               highlight_added(state.text, scores["added"]), {**scores, "generation": generation})


def load_rewriter(config: RunConfig, log=print) -> Rewriter:
    """Load the base model + adapter, the embedder and the detector, once, before serving."""
    from ai2human.models.hardware import choose_backend, detect_hardware
    from ai2human.evaluate.metrics import Detector, load_embedder
    from ai2human.models.loading import load_for_inference

    p = config.params
    name = str(p["model_name"])
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
        raise UserError(f"base model folder {name} does not exist; pass --base with a model folder or a Hub id")
    hw = detect_hardware()
    choice = choose_backend(p["backend"], hw, bool(p["load_in_4bit"]))
    log(f"{hw.describe()}\n{choice.summary()}")
    log(f"loading {p['model_name']} + adapter {config.adapter_dir}")
    try:
        model, tokenizer = load_for_inference(p["model_name"], choice, int(p["max_seq_length"]),
                                              config.adapter_dir, p["tokenizer_name"])
    except UserError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # what transformers raises for a missing or wrong model
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load the base model {p['model_name']!r}: {first} "
                        "(pass --base with a model folder or a Hub id this machine can reach)") from None
    embedder = load_embedder(device=choice.device)
    detector = Detector.load(config.detector_path) if config.detector_path else None
    if detector is None:
        log("no detector.joblib in the run: the page shows no P(human) (the evaluation notebook saves one)")
    return Rewriter(config, model, tokenizer, embedder, detector, choice.summary())


def run_markdown(config: RunConfig, backend: str = "") -> str:
    """The Run tab: what is served, with which settings, and the run's headline evaluation numbers."""
    p = config.params
    lines = [f"### Run `{config.name}`", ""]
    if config.manifest.get("description"):
        lines += [config.manifest["description"], ""]
    lines += [f"- base model: `{p['model_name']}`", f"- adapter: `{config.adapter_dir}`",
              f"- max_seq_length: {p['max_seq_length']}; defaults: temperature {p['temperature']}, top-p {p['top_p']}, "
              f"max new tokens {p['max_new_tokens']}; min_similarity {p['min_similarity']}"]
    if backend:
        lines.append(f"- serving with {backend}")
    if config.manifest:
        lines.append(f"- status {config.manifest.get('status', '?')}, created {config.manifest.get('created', '?')}, "
                     f"git {str(config.manifest.get('git', {}).get('commit', '?'))[:10]}")
    systems = config.eval_metrics.get("systems", {})
    if systems:
        names = [s for s in ("identity", "base", "finetuned", "human") if s in systems]
        rows = config.eval_metrics.get("rows", {})
        evaluated = rows.get("evaluated", "?") if isinstance(rows, dict) else rows
        lines += ["", f"### Evaluation on {evaluated} validation rows", "",
                  "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for key, label in HEADLINE_METRICS.items():
            values = [systems[s].get(key) for s in names]
            if any(v is not None for v in values):
                lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")
        det = config.eval_metrics.get("detector", {})
        if det:
            lines += ["", f"Detector: accuracy {_fmt(det.get('accuracy'))}, ROC AUC {_fmt(det.get('roc_auc'))}."]
        verdict = config.eval_metrics.get("verdict")
        if verdict:
            lines += ["", "**Verdict**", "", *(f"> {line}  " for line in str(verdict).splitlines())]
    else:
        lines += ["", "_No eval_metrics.json in this run: run the evaluation notebook for headline numbers._"]
    return "\n".join(lines)


def build_page(rewriter: Rewriter):
    """The Gradio Blocks: a Rewrite tab (input, settings, streamed rewrite, scores) and a Run tab."""
    import gradio as gr

    p = rewriter.config.params
    with gr.Blocks(title="ai2human rewrite", analytics_enabled=False) as page:
        gr.Markdown(f"# ai2human: rewrite AI-written text\nRun `{rewriter.config.name}` on `{p['model_name']}`. "
                    "The scores say how far to trust each rewrite.")
        with gr.Tabs():
            with gr.Tab("Rewrite", id="rewrite"):
                with gr.Row():
                    with gr.Column():
                        source = gr.Textbox(label="AI-written text", lines=12, max_lines=30, elem_id="source",
                                            placeholder="Paste the text to rewrite")
                        with gr.Accordion("Generation settings", open=False):
                            temperature = gr.Slider(0.0, 2.0, value=float(p["temperature"]), step=0.05, label="temperature",
                                                    info="0 = greedy; higher = more varied, less faithful")
                            top_p = gr.Slider(0.05, 1.0, value=float(p["top_p"]), step=0.05, label="top-p",
                                              info="nucleus sampling: lower keeps to safer words")
                            max_new = gr.Slider(1, int(p["max_seq_length"]), value=int(p["max_new_tokens"]), step=1,
                                                label="max new tokens", info="prompt + this must fit max_seq_length")
                        button = gr.Button("Rewrite", variant="primary", elem_id="rewrite-button")
                    with gr.Column():
                        output = gr.Textbox(label="Rewrite", lines=12, max_lines=30, interactive=False,
                                            elem_id="rewrite-output", buttons=["copy"])
                        report = gr.Markdown(READY_MESSAGE, elem_id="scores")
                        highlighted = gr.HighlightedText(label="Rewrite with added numbers, dates and names highlighted",
                                                         color_map=ADDED_COLORS, show_legend=True, elem_id="added")
                        with gr.Accordion("Scores as JSON", open=False):
                            scores = gr.JSON(elem_id="scores-json")
            with gr.Tab("Run", id="run"):
                gr.Markdown(run_markdown(rewriter.config, rewriter.backend), elem_id="run-summary")
                with gr.Accordion("manifest.json", open=True):
                    gr.JSON({k: v for k, v in rewriter.config.manifest.items() if k != "params_file_text"}
                            or {"params": p}, elem_id="manifest")
        button.click(rewriter.rewrite, [source, temperature, top_p, max_new], [output, report, highlighted, scores],
                     api_name="rewrite", concurrency_id="model")
    return page


def serve(rewriter: Rewriter, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 1,
          prevent_thread_lock: bool = False):
    """Queue the page (a second user waits for the model instead of crashing it) and launch it."""
    import gradio as gr

    page = build_page(rewriter)
    page.queue(default_concurrency_limit=concurrency)
    # System fonts: the default theme would fetch Google Fonts, and the page must work offline.
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    page.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, share=False,
                ssr_mode=False, theme=theme, css=CSS, footer_links=["api"])
    return page


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ai2human.app",
        description="Serve a trained run as a web page that rewrites AI-written text and scores each rewrite.",
        epilog="example: python -m ai2human.app --run runs/demo   (then open http://127.0.0.1:7860)",
    )
    parser.add_argument("--run", type=Path, help="run folder (runs/<run_name>) with adapter/, manifest.json, detector.joblib")
    parser.add_argument("--adapter", type=Path, help="an adapter folder (default: RUN/adapter)")
    parser.add_argument("--base", default="", help="base model (default: the run's model_name, else the adapter's)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 to share on a network)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--concurrency", type=int, default=1, help="rewrites generated at once; others wait in the queue")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.concurrency < 1:
            raise UserError(f"--concurrency must be at least 1, got {args.concurrency}")
        config = read_run(args.run, args.adapter, args.base)
        rewriter = load_rewriter(config)
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    print(f"serving run {config.name} on http://{args.host}:{args.port}", flush=True)
    serve(rewriter, args.host, args.port, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
