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
import pytest

from ai2human.app.page import (
    EMPTY_MESSAGE,
    Rewriter,
    RunConfig,
    highlight_added,
    read_run,
    run_markdown,
    score_rewrite,
    scores_markdown,
    stream_response,
)
from ai2human.errors import UserError
from ai2human.data.prompts import INSTRUCTION, format_prompt
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


class FakeDetector:
    def __init__(self, proba):
        self.proba = proba

    def predict_human_proba(self, texts):
        return np.full(len(texts), self.proba)


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


def make_rewriter(model, tokenizer, max_seq_length=1024, detector=None) -> Rewriter:
    params = dict(model_name="local:tiny-qwen2", tokenizer_name="", max_seq_length=max_seq_length, backend="auto",
                  load_in_4bit=False, max_new_tokens=32, temperature=0.0, top_p=1.0, min_similarity=0.7)
    return Rewriter(RunConfig(Path("adapter"), params), model, tokenizer, FakeEmbedder(), detector)


# ----------------------------------------------------------------------------- scoring one text


def test_score_rewrite_reports_similarity_detector_and_added_facts():
    scores = score_rewrite("Maria visited the old mill.", "Maria went to the old mill in 1999 with Tom.",
                           FakeEmbedder(), FakeDetector(0.8), min_similarity=0.7)
    assert 0.7 < scores["similarity"] <= 1.0 and not scores["meaning_drift"]
    assert scores["human_proba"] == pytest.approx(0.8) and scores["judged_human"] is True
    assert scores["added"]["dates"] == ["1999"] and scores["added"]["names"] == ["Tom"]
    assert scores["n_added"] == 2
    json.dumps(scores)  # the page returns it as JSON


def test_score_rewrite_without_detector_and_with_drift():
    scores = score_rewrite("abc abc", "xyz", FakeEmbedder(), None, min_similarity=0.5)
    assert scores["human_proba"] is None and scores["judged_human"] is None
    assert scores["similarity"] == 0.0 and scores["meaning_drift"]
    table = scores_markdown(scores, {"new_tokens": 3, "stopped": "eos", "seconds": 0.2})
    assert "no detector" in table and "meaning drift" in table and "EOS" in table


def test_highlight_added_marks_each_occurrence_and_keeps_the_text():
    text = "In 2021 New York and York met; York again, 2021."
    pieces = highlight_added(text, {"numbers": [], "dates": ["2021"], "names": ["New York", "York"]})
    assert "".join(p for p, _ in pieces) == text
    labelled = [(p, label) for p, label in pieces if label]
    assert labelled == [("2021", "added date"), ("New York", "added name"), ("York", "added name"),
                        ("York", "added name"), ("2021", "added date")]
    assert highlight_added("plain text", {"numbers": [], "dates": [], "names": []}) == [("plain text", None)]
    assert highlight_added("Yorkshire", {"numbers": [], "dates": [], "names": ["York"]}) == [("Yorkshire", None)]


def test_scores_markdown_lists_added_entities_and_truncation():
    scores = score_rewrite("A text.", "A text by Tom.", FakeEmbedder(), FakeDetector(0.2))
    table = scores_markdown(scores, {"new_tokens": 32, "stopped": "max_new_tokens", "seconds": 1.0}, "ROC AUC 0.90")
    assert "`Tom`" in table and "judged AI-written" in table and "ROC AUC 0.90" in table
    assert "cut at max new tokens" in table


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


def test_rewrite_streams_then_scores(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer, "Remote work helps, honestly." + tiny_tokenizer.eos_token)
    outputs = list(make_rewriter(model, tiny_tokenizer, detector=FakeDetector(0.6)).rewrite(AI_TEXT, 0.0, 1.0, 32))
    assert len(outputs) >= 2 and outputs[0][3] == {}  # streamed states first, scores last
    rewrite, table, pieces, scores = outputs[-1]
    assert rewrite == "Remote work helps, honestly." and "similarity" in table
    assert scores["human_proba"] == pytest.approx(0.6) and scores["generation"]["stopped"] == "eos"
    assert "".join(p for p, _ in pieces) == rewrite


# ---------------------------------------------------------------------------- run folders and CLI


def _fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/recorded-base"}))
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
    assert config.detector_path is None and "eval_metrics.json" in run_markdown(config)


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
    assert 0.0 <= scores["human_proba"] <= 1.0  # the demo run saves a detector
    assert -1.0 <= scores["similarity"] <= 1.0 and set(scores["added"]) == {"numbers", "dates", "names"}
    assert scores["generation"]["new_tokens"] <= 48 and scores["generation"]["stopped"] in ("eos", "template", "max_new_tokens")
    assert "similarity to the input" in table and "detector P(human)" in table
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
    assert all(r[0].strip() and "similarity" in r[3] for r in results)
