"""The rewrite page: scoring one rewrite, streaming a response, start-up errors, and the served API.

The API tests start the real command line (`python -m ai2human.app --run RUN`) on a free port with
the demo run and call it with gradio_client, as a user's script would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ai2human.app.page import EMPTY_MESSAGE, Rewriter, lone_surrogate, run_markdown
from ai2human.app.run_config import SERVING_DEFAULTS, RunConfig, read_run
from ai2human.app.scoring import highlight_added, score_rewrite, scores_markdown
from ai2human.app.streaming import stream_response
from ai2human.data.prompts import INSTRUCTION, format_prompt
from ai2human.data.sample import generate_pairs
from ai2human.errors import UserError
from ai2human.evaluate.yardstick import build_yardstick
from conftest import REPO

AI_TEXT = (
    "In today's fast-paced world, it is important to delve into the rich tapestry of remote work. "
    "Moreover, studies from 2021 underscore that balance fosters productivity and well-being."
)
START_TIMEOUT = 120  # seconds for the server to answer: model, embedder and Gradio on a 2-core CPU
CALL_TIMEOUT = 120


# ---------------------------------------------------------------------------- helpers and fakes


class FakeEmbedder:
    """Bag-of-letters vectors: identical texts score 1, texts sharing no letter score 0."""

    def encode(self, texts, **kwargs):
        out = np.zeros((len(texts), 26))
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)


@pytest.fixture(scope="module")
def yardstick():
    """A real yardstick, small: fitted on 40 synthetic pairs, calibrated with the bag-of-letters embedder."""
    rows = pd.DataFrame(generate_pairs(60, seed=2)).rename(columns={"LLM": "ai"})
    return build_yardstick(rows[:40], rows[40:], FakeEmbedder())


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from ai2human.models.loading import load_tokenizer

    return load_tokenizer("local:tiny-qwen2")


class ScriptedModel:
    """Stands in for a causal LM: "generates" a fixed reply token by token through the streamer,
    honouring EOS, max_new_tokens and the stopping criteria like ``model.generate`` does."""

    def __init__(self, tokenizer, reply: str, delay: float = 0.0):
        self.reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        self.generation_config = SimpleNamespace(eos_token_id=tokenizer.eos_token_id)
        self.delay, self.calls, self.produced = delay, 0, 0

    def parameters(self):
        import torch

        yield torch.zeros(1)

    def generate(self, input_ids, attention_mask=None, streamer=None, stopping_criteria=(), max_new_tokens=1,
                 eos_token_id=(), **kwargs):
        import torch

        self.calls += 1
        sequence = input_ids
        streamer.put(sequence.cpu())
        for token in self.reply_ids[:max_new_tokens]:
            time.sleep(self.delay)
            sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)
            self.produced += 1
            streamer.put(torch.tensor([token]))
            if token in eos_token_id or any(bool(c(sequence, None).all()) for c in stopping_criteria):
                break
        streamer.end()
        return sequence


def make_rewriter(model, tokenizer, max_seq_length=1024, yardstick=None) -> Rewriter:
    params = SERVING_DEFAULTS | dict(model_name="local:tiny-qwen2", max_seq_length=max_seq_length, load_in_4bit=False,
                                     max_new_tokens=32, temperature=0.0, top_p=1.0)
    return Rewriter(RunConfig(Path("adapter"), params), model, tokenizer, FakeEmbedder(), yardstick)


# ----------------------------------------------------------------------------- scoring one text


def test_score_rewrite_gives_the_evaluations_verdict_and_components(yardstick):
    human = generate_pairs(60, seed=2)[45]["human"]
    scores = score_rewrite(human, human + " Then Zebulon arrived in 1999.", FakeEmbedder(), yardstick)
    assert scores["success"] is False and "invent details" in scores["failure"]
    assert scores["added"]["dates"] == ["1999"] and scores["added"]["names"] == ["Zebulon"] and scores["n_added"] == 2
    assert scores["fluent"] is True and scores["meaning_kept"] is True and 0 <= scores["score"] <= 1
    same = score_rewrite(human, human, FakeEmbedder(), yardstick)
    assert same["success"] is True and same["failure"] == ""
    json.dumps(scores)  # the page returns it as JSON


def test_score_rewrite_of_degenerate_output_fails_and_says_why(yardstick):
    scores = score_rewrite("A calm text about gardens.", ".\n.\n.", FakeEmbedder(), yardstick, truncated=True)
    assert scores["success"] is False and scores["score"] == 0 and scores["fluency_problems"] == "no words"
    table = scores_markdown(scores, {"new_tokens": 3, "stopped": "max_new_tokens", "seconds": 0.2})
    assert "**Fails**" in table and "no words" in table and "cut at max new tokens" in table


def test_score_rewrite_without_an_evaluation_gives_similarity_only():
    scores = score_rewrite("abc abc", "xyz", FakeEmbedder(), None)
    assert scores["success"] is None and scores["similarity"] == 0.0
    assert "No evaluation in this run" in scores_markdown(scores, {"new_tokens": 3, "stopped": "eos", "seconds": 0.2})


def test_highlight_added_marks_each_occurrence_and_keeps_the_text():
    text = "In 2021 New York and York met; York again, 2021."
    pieces = highlight_added(text, {"numbers": [], "dates": ["2021"], "names": ["New York", "York"]})
    assert "".join(p for p, _ in pieces) == text
    labelled = [(p, label) for p, label in pieces if label]
    assert labelled == [("2021", "added date"), ("New York", "added name"), ("York", "added name"),
                        ("York", "added name"), ("2021", "added date")]
    assert highlight_added("plain text", {"numbers": [], "dates": [], "names": []}) == [("plain text", None)]
    assert highlight_added("Yorkshire", {"numbers": [], "dates": [], "names": ["York"]}) == [("Yorkshire", None)]


def test_scores_markdown_lists_added_entities(yardstick):
    scores = score_rewrite("A text.", 'A text by Tom, who said "we will win this".', FakeEmbedder(), yardstick)
    table = scores_markdown(scores, {"new_tokens": 32, "stopped": "eos", "seconds": 1.0}, "ROC AUC 0.90")
    assert "`Tom`" in table and "`we will win this`" in table and "ROC AUC 0.90" in table
    assert scores["added"]["quotes"] == ["we will win this"]


# -------------------------------------------------------------------------------- streaming


def test_stream_stops_at_eos_and_never_shows_the_prompt(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token
    model = ScriptedModel(tiny_tokenizer, "A calmer take on it." + eos + " never shown")
    states = list(stream_response(model, tiny_tokenizer, format_prompt(AI_TEXT), max_new_tokens=64))
    final = states[-1]
    assert final.text == "A calmer take on it." and final.stopped == "eos"
    assert final.new_tokens == len(tiny_tokenizer("A calmer take on it.", add_special_tokens=False)["input_ids"]) + 1
    assert all(not s.stopped for s in states[:-1]) and all(INSTRUCTION not in s.text for s in states)


def test_stream_cuts_at_a_new_prompt_block_and_stops_generating(tiny_tokenizer):
    reply = "Short answer here.\n### Instruction:\n" + " filler words" * 60
    model = ScriptedModel(tiny_tokenizer, reply, delay=0.01)
    final = list(stream_response(model, tiny_tokenizer, format_prompt(AI_TEXT), max_new_tokens=200))[-1]
    assert final.text == "Short answer here." and final.stopped == "template"
    assert model.produced < len(model.reply_ids) // 2, "generation went on after the template marker"


def test_stream_reports_max_new_tokens(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, "one two three four five six seven eight nine ten")
    final = list(stream_response(model, tiny_tokenizer, format_prompt(AI_TEXT), max_new_tokens=4))[-1]
    assert final.stopped == "max_new_tokens" and final.new_tokens == 4 and final.text


def test_abandoned_stream_stops_the_generation_thread(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, " word" * 200, delay=0.01)
    stream = stream_response(model, tiny_tokenizer, format_prompt(AI_TEXT), max_new_tokens=200)
    next(stream)
    stream.close()  # what Gradio does when the page goes away
    assert model.produced < 100
    assert not any(t.name == "ai2human-generate" for t in threading.enumerate())


# ------------------------------------------------------------------------------- bad inputs


def test_empty_input_is_not_sent_to_the_model(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, "x")
    outputs = list(make_rewriter(model, tiny_tokenizer).rewrite("   \n", 0.0, 1.0, 32))
    assert outputs == [("", EMPTY_MESSAGE, None, {"error": "empty input"})] and model.calls == 0


def test_over_long_input_gets_a_message_and_is_not_sent(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, "x")
    rewriter = make_rewriter(model, tiny_tokenizer, max_seq_length=200)
    (rewrite, message, _, scores), = rewriter.rewrite(AI_TEXT * 10, 0.0, 1.0, 32)
    assert rewrite == "" and "Too long" in message and "max_seq_length = 200" in message and model.calls == 0
    assert "Nothing was sent" in scores["error"]


def test_rewrite_streams_then_scores(tiny_tokenizer, yardstick):
    model = ScriptedModel(tiny_tokenizer, "Remote work helps, honestly." + tiny_tokenizer.eos_token)
    outputs = list(make_rewriter(model, tiny_tokenizer, yardstick=yardstick).rewrite(AI_TEXT, 0.0, 1.0, 32))
    assert len(outputs) >= 2 and outputs[0][3] == {}  # streamed states first, scores last
    rewrite, table, pieces, scores = outputs[-1]
    assert rewrite == "Remote work helps, honestly." and "meaning kept" in table
    assert 0 <= scores["human_proba"] <= 1 and scores["generation"]["stopped"] == "eos" and "success" in scores
    assert "".join(p for p, _ in pieces) == rewrite


def test_lone_surrogate_gets_a_message_and_is_not_sent(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, "x")
    text = "Fine text \ud800 with a broken character"
    assert lone_surrogate(text) == 10 and lone_surrogate("ok ☃") == -1
    (rewrite, message, _, scores), = make_rewriter(model, tiny_tokenizer).rewrite(text, 0.0, 1.0, 32)
    assert rewrite == "" and "broken character" in message and "position 10" in scores["error"] and model.calls == 0


# ---------------------------------------------------------------------------- run folders and CLI


def _fake_adapter(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/recorded-base"}))
    save_file({"lora_A": torch.zeros(4, 8)}, str(folder / "adapter_model.safetensors"))
    return folder


def test_read_run_prefers_base_then_manifest_then_adapter(tmp_path):
    run = tmp_path / "run"
    _fake_adapter(run / "adapter")
    assert read_run(run).params["model_name"] == "org/recorded-base"  # no manifest: the adapter's record
    assert read_run(run).params["max_new_tokens"] == 512  # and the evaluation notebook's defaults
    (run / "manifest.json").write_text(json.dumps({"run_name": "r1", "params": {"model_name": "org/trained", "max_new_tokens": 64}}))
    config = read_run(run)
    assert config.params["model_name"] == "org/trained" and config.params["max_new_tokens"] == 64 and config.name == "r1"
    assert read_run(run, base="org/other").params["model_name"] == "org/other"
    assert config.yardstick_path is None and "eval_metrics.json" in run_markdown(config)


def test_serving_defaults_are_the_evaluation_notebooks():
    import ast

    import nbformat

    notebook = nbformat.read(REPO / "notebooks" / "03_evaluate.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    declared = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    assert {k: declared[k] for k in SERVING_DEFAULTS} == SERVING_DEFAULTS


@pytest.mark.parametrize("damage, message", [
    (lambda a: (a / "adapter_model.safetensors").unlink(), "no weights"),
    (lambda a: (a / "adapter_config.json").write_text("{not json"), "not valid JSON"),
    (lambda a: (a / "adapter_model.safetensors").write_bytes((a / "adapter_model.safetensors").read_bytes()[:60]), "corrupt"),
])
def test_damaged_adapter_is_a_user_error_naming_the_adapter(tmp_path, damage, message):
    adapter = _fake_adapter(tmp_path / "run" / "adapter")
    damage(adapter)
    with pytest.raises(UserError, match=message):
        read_run(tmp_path / "run")


def test_run_tab_escapes_manifest_text_and_warns_about_credentials(tmp_path):
    run = tmp_path / "run"
    _fake_adapter(run / "adapter")
    (run / "manifest.json").write_text(json.dumps({
        "run_name": "r<svg onload=x>", "description": '<img src=x onerror=alert(1)> <a href="http://e">link</a>',
        "status": "credentials_found", "credentials_found": ["03_evaluate.ipynb: hf_..."], "params": {}}))
    config = read_run(run)
    text = run_markdown(config)
    assert "<img" not in text and "<a " not in text and "<svg" not in text and "&lt;img" in text
    assert "Warning" in text and "credentials scan" in text and config.credentials_warning


def test_read_run_without_adapter_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no adapter"):
        read_run(tmp_path)
    with pytest.raises(UserError, match="no run folder"):
        read_run(tmp_path / "missing")


def _app_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ai2human.app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})


def test_cli_run_without_adapter_exits_2_with_one_line(tmp_path):
    proc = _app_cli("--run", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and "adapter" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cli_missing_base_model_exits_2_with_one_line(tmp_path):
    adapter = _fake_adapter(tmp_path / "adapter")
    proc = _app_cli("--adapter", str(adapter), "--base", str(tmp_path / "no-such-model"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no-such-model" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_port_in_use_exits_2_with_one_line(tmp_path):
    adapter = _fake_adapter(tmp_path / "adapter")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _app_cli("--adapter", str(adapter), "--port", str(taken.getsockname()[1]))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--port" in proc.stderr, proc.stderr[-2000:]


def test_cli_corrupt_yardstick_exits_2_with_one_line(tmp_path):
    run = tmp_path / "run"
    _fake_adapter(run / "adapter")
    (run / "yardstick.joblib").write_bytes(b"\x80\x04 not a pickle")
    proc = _app_cli("--run", str(run))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "yardstick.joblib is unreadable" in proc.stderr, proc.stderr[-2000:]


def test_cli_missing_local_model_is_caught_at_load(tmp_path):
    """A base the loader itself rejects (not a path the app can pre-check) is still one line, exit 2."""
    adapter = _fake_adapter(tmp_path / "adapter")
    proc = _app_cli("--adapter", str(adapter), "--base", "local:no-such-model")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot load the base model" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------ the served app + API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(run_dir: Path, log_path: Path, *extra: str):
    """`python -m ai2human.app --run RUN --port FREE` until the block ends; yields the page URL.

    The server is always stopped, also when the test fails; its output goes to ``log_path``.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ai2human.app", "--run", str(run_dir), "--port", str(port), *extra],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the app exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not answer within {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def app_url(demo_run, tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(demo_run, log) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.mark.slow
def test_api_rewrite_returns_a_response_without_the_prompt_and_scores(client, demo_run):
    job = client.submit(AI_TEXT, 0.7, 0.9, 48, api_name="/rewrite")
    rewrite, table, pieces, scores = job.result(timeout=CALL_TIMEOUT)
    assert rewrite.strip(), "empty rewrite"
    assert INSTRUCTION not in rewrite and "Below is an instruction" not in rewrite and AI_TEXT not in rewrite
    assert 0.0 <= scores["human_proba"] <= 1.0 and scores["success"] in (True, False)  # the demo run saves a yardstick
    assert -1.0 <= scores["similarity"] <= 1.0 and set(scores["added"]) == {"numbers", "dates", "names", "quotes"}
    assert scores["generation"]["new_tokens"] <= 48 and scores["generation"]["stopped"] in ("eos", "template", "max_new_tokens")
    assert "meaning kept" in table and "judged human" in table and "### Score" in table
    assert "".join(p["token"] for p in pieces) == rewrite


@pytest.mark.slow
def test_api_streams_the_rewrite(client):
    job = client.submit(AI_TEXT, 0.0, 1.0, 32, api_name="/rewrite")
    final = job.result(timeout=CALL_TIMEOUT)
    updates = job.outputs()
    assert len(updates) > 2, "the rewrite came back in one piece, not streamed"
    assert updates[-1][0] == final[0] and all(u[3] == {} for u in updates[:-1])


@pytest.mark.slow
def test_api_bad_inputs_get_messages(client, demo_run):
    rewrite, message, _, scores = client.predict("", 0.7, 0.9, 48, api_name="/rewrite")
    assert rewrite == "" and "Paste" in message and scores == {"error": "empty input"}
    max_seq_length = json.loads((demo_run / "manifest.json").read_text())["params"]["max_seq_length"]
    long_text = " ".join(["word"] * (2 * max_seq_length))
    rewrite, message, _, scores = client.predict(long_text, 0.7, 0.9, 48, api_name="/rewrite")
    assert rewrite == "" and "Too long" in message and f"max_seq_length = {max_seq_length}" in message


@pytest.mark.slow
def test_api_queues_concurrent_requests(client):
    jobs = [client.submit(AI_TEXT, 0.7, 0.9, 32, api_name="/rewrite") for _ in range(3)]
    results = [job.result(timeout=CALL_TIMEOUT) for job in jobs]
    assert all(r[0].strip() and "success" in r[3] for r in results)
