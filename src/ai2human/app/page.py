"""The rewrite page: a Gradio app that serves a trained run the way it was trained and judges each rewrite.

    python -m ai2human.app --run runs/demo                      # a run folder made by the runner
    python -m ai2human.app --adapter PATH [--base MODEL]         # any adapter folder

The model is loaded once at start-up with the evaluation notebook's rules (``choose_backend``:
Unsloth on a capable GPU, transformers + PEFT otherwise, fp32 on a CPU), prompted through
``prompts.format_prompt`` exactly as in training, and only the response is streamed back, cut at
EOS or at an Alpaca block the model starts on its own. Each finished rewrite gets the evaluation's
verdict from the run's yardstick (success, score, and each condition: judged human, fluent, meaning
kept, nothing invented, not cut off), so the page says how far to trust it.

The page's ``/rewrite`` endpoint is public, so ``gradio_client`` can call it too.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from ai2human.app.run_config import RunConfig
from ai2human.app.scoring import ADDED_COLORS, fmt, highlight_added, score_rewrite, scores_markdown
from ai2human.app.streaming import StreamState, stream_response
from ai2human.data.prompts import format_prompt
from ai2human.errors import UserError

# Gradio must not phone home (no network on CI, and users' texts are none of anyone's business).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

READY_MESSAGE = "Scores for the rewrite will show here."
EMPTY_MESSAGE = "Paste an AI-written text in the box on the left, then press **Rewrite**."
SURROGATE_MESSAGE = ("**The text holds a broken character** (an unpaired UTF-16 surrogate at position {at}), "
                     "usually from a bad copy and paste. Remove it and try again. Nothing was sent to the model.")
CSS = "#scores td:nth-child(2), #scores th:nth-child(2) { white-space: nowrap; }"
HEADLINE_METRICS = {
    "success_rate": "success rate",
    "score_mean": "mean score",
    "judged_human_share": "judged human by every detector",
    "fluent_share": "fluent",
    "meaning_kept_share": "meaning kept",
    "adds_any_share": "invents a number/date/name/quote",
    "truncated_share": "cut at max_new_tokens",
}


def plain(text) -> str:
    """Manifest text made inert for Markdown/HTML: escaped, and without backticks that would end a code span."""
    return html.escape(str(text)).replace("`", "'")


def lone_surrogate(text: str) -> int:
    """Position of the first unpaired surrogate (not encodable as UTF-8), or -1."""
    try:
        text.encode("utf-8")
        return -1
    except UnicodeEncodeError as exc:
        return exc.start


class Rewriter:
    """The loaded model, tokenizer, embedder and yardstick of one run; ``rewrite`` is the page's handler."""

    def __init__(self, config: RunConfig, model, tokenizer, embedder, yardstick=None, backend: str = "", signals=None):
        self.config, self.model, self.tokenizer = config, model, tokenizer
        self.embedder, self.yardstick, self.backend, self.signals = embedder, yardstick, backend, signals
        self.max_seq_length = int(config.params["max_seq_length"])
        roc_auc = config.eval_metrics.get("detector", {}).get("roc_auc")
        self.detector_note = "" if roc_auc is None else f"TF-IDF detector ROC AUC {float(roc_auc):.2f} on the run's held-out texts"

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
        at = lone_surrogate(text)
        if at >= 0:
            message = SURROGATE_MESSAGE.format(at=at)
            yield "", message, None, {"error": re.sub(r"\*", "", message)}
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
        scores = score_rewrite(text, state.text, self.embedder, self.yardstick, state.stopped == "max_new_tokens", self.signals)
        yield (state.text, scores_markdown(scores, generation, self.detector_note),
               highlight_added(state.text, scores.get("added", {})), {**scores, "generation": generation})


def load_rewriter(config: RunConfig, log=print) -> Rewriter:
    """Load the base model + adapter, the embedder and the yardstick, once, before serving."""
    from ai2human.evaluate.meaning import load_embedder
    from ai2human.evaluate.yardstick import Yardstick
    from ai2human.evaluate.zero_shot import SignalCache
    from ai2human.models.hardware import choose_backend, detect_hardware
    from ai2human.models.loading import load_for_inference

    p = config.params
    name = str(p["model_name"])
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
        raise UserError(f"base model folder {name} does not exist; pass --base with a model folder or a Hub id")
    yardstick = Yardstick.load(config.yardstick_path) if config.yardstick_path else None  # corrupt: one line, before the model
    hw = detect_hardware()
    choice = choose_backend(p["backend"], hw, bool(p["load_in_4bit"]), purpose="generate")
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
    if yardstick is None:
        log("no evaluation in the run (yardstick.joblib): the page shows no verdict (the evaluation notebook saves one)")
    signals = SignalCache(model, tokenizer) if yardstick is not None and yardstick.zero_shot is not None else None
    return Rewriter(config, model, tokenizer, embedder, yardstick, choice.summary(), signals)


def run_markdown(config: RunConfig, backend: str = "") -> str:
    """The Run tab: what is served, with which settings, and the run's headline evaluation numbers."""
    p = config.params
    lines = [f"### Run {plain(config.name)}", ""]
    if config.credentials_warning:
        lines += [f"**Warning:** {plain(config.credentials_warning)}.", ""]
    if config.manifest.get("description"):
        lines += [plain(config.manifest["description"]), ""]
    lines += [f"- base model: {plain(p['model_name'])}", f"- adapter: {plain(config.adapter_dir)}",
              f"- max_seq_length: {p['max_seq_length']}; defaults: temperature {p['temperature']}, top-p {p['top_p']}, "
              f"max new tokens {p['max_new_tokens']}"]
    if backend:
        lines.append(f"- serving with {plain(backend)}")
    if config.manifest:
        lines.append(f"- status {plain(config.manifest.get('status', '?'))}, created {plain(config.manifest.get('created', '?'))}, "
                     f"git {plain(str(config.manifest.get('git', {}).get('commit', '?'))[:10])}")
    systems = config.eval_metrics.get("systems", {})
    if systems:
        names = [s for s in ("identity", "base", "finetuned", "human") if s in systems]
        rows = config.eval_metrics.get("rows", {})
        evaluated = rows.get("evaluated", "?") if isinstance(rows, dict) else rows
        lines += ["", f"### Evaluation on {plain(evaluated)} validation rows", "",
                  "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for key, label in HEADLINE_METRICS.items():
            values = [systems[s].get(key) for s in names]
            if any(v is not None for v in values):
                show = fmt if key == "score_mean" else (lambda v: "n/a" if v is None else f"{100 * v:.0f}%")
                lines.append(f"| {label} | " + " | ".join(show(v) for v in values) + " |")
        verdict = config.eval_metrics.get("verdict")
        if verdict:
            lines += ["", "**Verdict**", "", *(f"> {plain(line)}  " for line in str(verdict).splitlines())]
    else:
        lines += ["", "_No eval_metrics.json in this run: run the evaluation notebook for headline numbers._"]
    return "\n".join(lines)


def build_page(rewriter: Rewriter):
    """The Gradio Blocks: a Rewrite tab (input, settings, streamed rewrite, scores) and a Run tab."""
    import gradio as gr

    p = rewriter.config.params
    with gr.Blocks(title="ai2human rewrite", analytics_enabled=False) as page:
        gr.Markdown(f"# ai2human: rewrite AI-written text\nRun {plain(rewriter.config.name)} on {plain(p['model_name'])}. "
                    "The verdict says how far to trust each rewrite.")
        if rewriter.config.credentials_warning:
            gr.Markdown(f"**Warning:** {plain(rewriter.config.credentials_warning)}.", elem_id="credentials-warning")
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
                        highlighted = gr.HighlightedText(label="Rewrite with added numbers, dates, names and quotes highlighted",
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


