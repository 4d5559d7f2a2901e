"""EDA numbers against hand-computed cases, the summary file other notebooks read, and the notebook."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import matplotlib
import numpy as np
import pandas as pd
import pytest

from ai2human.eda import analysis as eda
from ai2human.data.pairs import LoadReport
from ai2human.data.prompts import format_example

matplotlib.use("Agg")


# --- percentiles and the max_seq_length recommendation --------------------------------------------


def test_percentiles_by_hand():
    stats = eda.percentiles(range(1, 11))
    # linear interpolation over 1..10: position q/100 * 9 from the first value
    assert stats == pytest.approx({"count": 10, "mean": 5.5, "p50": 5.5, "p90": 9.1, "p95": 9.55, "p99": 9.91, "max": 10})
    assert eda.percentiles([7]) == pytest.approx({"count": 1, "mean": 7, "p50": 7, "p90": 7, "p95": 7, "p99": 7, "max": 7})
    with pytest.raises(ValueError):
        eda.percentiles([])


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (1, 1), (2, 2), (3, 4), (1000, 1024), (1024, 1024), (1024.5, 2048)])
def test_power_of_two_at_least(value, expected):
    assert eda.power_of_two_at_least(value) == expected


def test_recommendation_covers_both_p90_and_p95():
    assert eda.recommend_max_seq_length(900, 1000) == 1024
    assert eda.recommend_max_seq_length(940, 1146) == 2048
    assert eda.recommend_max_seq_length(1100, 1100) == 2048


def test_share_over_counts_only_truncated_examples():
    lengths = [100, 1024, 1025, 3000]
    assert eda.share_over(lengths, 1024) == 0.5  # exactly max_seq_length fits
    assert eda.share_over(np.array(lengths), 99) == 1.0
    assert eda.share_over({"tokens": {"example": {"lengths": lengths}}}, 2048) == 0.25
    assert eda.share_over([], 10) == 0.0


def test_token_stats_adds_share_recommendation_and_lengths():
    example = np.arange(1, 101)  # 1..100 tokens
    stats = eda.token_stats({"human": np.array([5, 50]), "example": example}, max_seq_length=64)
    ex = stats["example"]
    assert ex["p90"] == pytest.approx(90.1) and ex["p95"] == pytest.approx(95.05)
    assert ex["share_over_max_seq_length"] == pytest.approx(0.36)
    assert (ex["power_of_two_p90"], ex["power_of_two_p95"], ex["recommended_max_seq_length"]) == (128, 128, 128)
    assert ex["lengths"] == list(range(1, 101))
    assert stats["human"]["share_over_max_seq_length"] == 0.0 and "lengths" not in stats["human"]


def test_overlong_warning_only_above_ten_percent_and_says_what_overlong_does():
    summary = {"tokens": {"tokenizer": "tok", "example": {"lengths": [10] * 9 + [100], "recommended_max_seq_length": 128}}}
    assert eda.overlong_warning(summary, 64) == ""  # exactly 10%
    summary["tokens"]["example"]["lengths"] = [10] * 8 + [100, 100]
    message = eda.overlong_warning(summary, 64)
    assert "20.0% of training examples are longer than max_seq_length=64" in message
    assert '"drop"' in message and '"truncate"' in message and "128" in message and "tok" in message


# --- lengths and tokens -------------------------------------------------------------------------


class WhitespaceTokenizer:
    """A stand-in fast tokenizer: one token per word, plus a BOS when asked for special tokens."""

    is_fast = True

    def __init__(self):
        self.batches = []

    def __call__(self, texts, add_special_tokens=True, **_):
        self.batches.append(len(texts))
        return {"input_ids": [[0] * (len(t.split()) + add_special_tokens) for t in texts]}


def test_token_lengths_are_batched_and_in_order():
    tok = WhitespaceTokenizer()
    lengths = eda.token_lengths(["a", "a b", "a b c", "", "a b c d e"], tok, batch_size=2)
    assert lengths.tolist() == [1, 2, 3, 0, 5]
    assert tok.batches == [2, 2, 1]
    assert eda.token_lengths(["a b"], tok, add_special_tokens=True).tolist() == [3]


def test_token_lengths_with_the_tiny_model_tokenizer():
    from ai2human.models.loading import load_tokenizer

    tok = load_tokenizer("local:tiny-qwen2")
    texts = ["Hello there.", "A longer text, with more words in it than the first."]
    lengths = eda.token_lengths(texts, tok, batch_size=1)
    assert lengths.tolist() == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]


def test_examples_use_the_training_format():
    pairs = pd.DataFrame({"human": ["h1", "h2"], "ai": ["a1", "a2"]})
    assert eda.example_texts(pairs, "</s>") == [format_example("a1", "h1", "</s>"), format_example("a2", "h2", "</s>")]


def test_length_table_counts_chars_and_words():
    table = eda.length_table(["one two", "three\n\nfour five"])
    assert table["chars"].tolist() == [7, 16] and table["words"].tolist() == [2, 3]


# --- paragraph structure --------------------------------------------------------------------------


def test_paragraph_stats_by_hand():
    texts = ["One.\n\nTwo.", "One.\nTwo.", "Just one.", "## Title\n\n- item\n- **bold** item"]
    stats = eda.paragraph_stats(texts)
    assert stats["share_blank_line"] == pytest.approx(2 / 4)
    assert stats["texts_multi_paragraph"] == 3
    assert stats["share_blank_line_multi"] == pytest.approx(2 / 3)
    assert stats["paragraphs"]["max"] == 3
    assert (stats["share_markdown"], stats["share_headings"], stats["share_bold"], stats["share_lists"]) == (0.25, 0.25, 0.25, 0.25)


# --- vocabulary -------------------------------------------------------------------------------------


def test_word_counts_keep_contractions_whole():
    counts = eda.word_counts(["It's a test, it’s 2024.", "A TEST"])
    assert counts == Counter({"it's": 2, "a": 2, "test": 2})  # no "s", no digits, case folded


def test_top_words_drop_stop_words_and_single_letters():
    counts = Counter({"the": 50, "said": 10, "x": 9, "one": 5, "will": 5})
    top = eda.top_words(counts, n=2, stop={"the"})
    assert top["word"].tolist() == ["said", "one"]  # ties keep first-seen order
    assert top["per_1000_words"].tolist() == pytest.approx([1000 * 10 / 79, 1000 * 5 / 79])


def test_log_odds_with_a_given_prior_by_hand():
    # a = {x: 3, y: 1}, b = {x: 1, y: 3}, prior 1 each: n_a = n_b = 4, a_0 = 2
    # delta_x = log(4 / 2) - log(2 / 4) = 2 log 2; var = 1/4 + 1/2; y is the mirror image
    table = eda.log_odds_dirichlet({"x": 3, "y": 1}, {"x": 1, "y": 3}, prior={"x": 1, "y": 1})
    assert table["word"].tolist() == ["x", "y"]
    assert table["log_odds"].tolist() == pytest.approx([2 * math.log(2), -2 * math.log(2)])
    assert table["z"].tolist() == pytest.approx([2 * math.log(2) / math.sqrt(0.75), -2 * math.log(2) / math.sqrt(0.75)])
    assert table[["count_a", "count_b"]].values.tolist() == [[3, 1], [1, 3]]


def test_log_odds_default_prior_is_the_pooled_counts():
    # prior x = y = 4, a_0 = 8: delta_x = log(7 / 5) - log(5 / 7), var = 1/7 + 1/5
    table = eda.log_odds_dirichlet(Counter(x=3, y=1), Counter(x=1, y=3))
    delta = math.log(7 / 5) - math.log(5 / 7)
    assert table.loc[0, "log_odds"] == pytest.approx(delta)
    assert table.loc[0, "z"] == pytest.approx(delta / math.sqrt(1 / 7 + 1 / 5))


def test_log_odds_handles_words_seen_on_one_side_only():
    table = eda.log_odds_dirichlet({"only_a": 5, "both": 5}, {"both": 5, "only_b": 5})
    assert table["word"].tolist()[0] == "only_a" and table["word"].tolist()[-1] == "only_b"
    assert table.set_index("word").loc["both", "z"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="positive pseudo-count"):
        eda.log_odds_dirichlet({"x": 1}, {"y": 1}, prior={"x": 1})


def test_log_odds_needs_evidence_not_just_a_ratio():
    # same 5:1 ratio, ten times the evidence: the frequent word ranks first
    table = eda.log_odds_dirichlet({"rare": 5, "common": 50, "filler": 500}, {"rare": 1, "common": 10, "filler": 500})
    assert table["word"].tolist()[:2] == ["common", "rare"]


def test_distinguishing_words_takes_each_end():
    table = eda.log_odds_dirichlet({"a1": 9, "a2": 6, "mid": 5, "b2": 1}, {"a1": 1, "mid": 5, "b2": 6, "b1": 9})
    side_a, side_b = eda.distinguishing_words(table, n=2)
    assert side_a["word"].tolist() == ["a1", "a2"] and side_b["word"].tolist() == ["b1", "b2"]


# --- summary file ---------------------------------------------------------------------------------


def small_summary(max_seq_length: int = 8) -> dict:
    texts = {"human": ["I don't know.\nIt's fine.", "Yeah."], "ai": ["Moreover, it is crucial.\n\nIndeed.", "## A\n\nDelve."]}
    tokens = {"human": np.array([4, 2]), "ai": np.array([5, 3]), "example": np.array([6, 12])}
    counts = {s: eda.word_counts(t) for s, t in texts.items()}
    log_odds = eda.log_odds_dirichlet(counts["human"], counts["ai"])
    human_words, ai_words = eda.distinguishing_words(log_odds, 3)
    from ai2human.eda.style import style_table

    return eda.build_summary(
        LoadReport("x.csv", 3, 1, 0, 2),
        columns={"human": "human", "ai": "LLM"},
        paragraphs={s: eda.paragraph_stats(t) for s, t in texts.items()},
        lengths=eda.length_stats({s: eda.length_table(t) for s, t in texts.items()}),
        tokens=eda.token_stats(tokens, max_seq_length),
        tokenizer="tok",
        max_seq_length=max_seq_length,
        top={s: eda.top_words(c, 3, eda.stopwords()) for s, c in counts.items()},
        distinguishing={"human": human_words, "ai": ai_words},
        style=eda.style_stats({s: style_table(t) for s, t in texts.items()}),
    )


def test_summary_round_trips_with_the_keys_finetuning_reads(tmp_path):
    path = eda.write_summary(small_summary(), tmp_path)
    assert path == tmp_path / "eda_summary.json"
    summary = eda.read_summary(tmp_path)
    assert summary == eda.read_summary(path)
    example = summary["tokens"]["example"]
    assert example["p90"] == pytest.approx(11.4) and example["share_over_max_seq_length"] == 0.5
    assert example["lengths"] == [6, 12] and example["recommended_max_seq_length"] == 16
    assert eda.share_over(summary, 11) == 0.5 and eda.share_over(summary, 12) == 0.0
    assert summary["dataset"]["rows_kept"] == 2 and summary["dataset"]["columns"]["ai"] == "LLM"
    assert summary["paragraphs"]["ai"]["share_blank_line"] == 1.0
    assert summary["style"]["human"]["contractions_per_100w"]["mean"] > 0
    assert set(summary["vocabulary"]["distinguishing"]["ai"][0]) == {"word", "z", "count_human", "count_ai"}
    assert summary["lengths"]["words"]["human"]["max"] == 5


def test_summary_file_keeps_the_length_list_on_one_line(tmp_path):
    text = eda.write_summary(small_summary(), tmp_path).read_text()
    assert '"lengths": [6, 12]' in text
    json.loads(text)


# --- display and plots ------------------------------------------------------------------------------


def test_sample_pairs_html_escapes_keeps_line_breaks_and_caps_height():
    pairs = pd.DataFrame({"human": ["<b>hi</b>\nthere"], "ai": ["x" * 50], "row": [7]})
    page = eda.sample_pairs_html(pairs, {"human": "essay", "ai": "gpt"}, n=3, max_chars=10)
    assert "&lt;b&gt;hi" in page and "\n" in page and "pre-wrap" in page
    assert "row 7" in page and ">essay</th>" in page and "x" * 10 + " [...]" in page
    assert page.count("max-height") == 2 and "overflow-y: auto" in page and "<caption" in page


@pytest.mark.parametrize(("value", "shown"), [(0.519, "0.519"), (12.18, "12.2"), (97.699, "97.7"), (1148.8, "1,149"),
                                              (5.853, "5.85"), (0, "0"), (-2.345, "-2.35"), (0.00012, "1.20e-04")])
def test_significant_gives_three_digits(value, shown):
    from ai2human.eda.tables import significant

    assert significant(value) == shown


def test_cells_are_formatted_by_what_the_row_holds():
    f = eda.format_value
    assert f("share_blank_line", 0.987) == "98.7%" and f("share_over_max_seq_length", 0.07) == "7.0%"
    assert f("texts_multi_paragraph", 281.0) == "281" and f("paragraphs count", 300.0) == "300"
    assert f("count", 15970.0) == "15,970" and f("recommended_max_seq_length", 2048.0) == "2,048"
    assert f("p50", 4.0) == "4" and f("p99", 19.01) == "19.0" and f("mean", 572.54) == "573"
    assert f("power_of_two_p90", float("nan")) == "" and f("rows read", 300) == "300"


def test_tables_put_statistics_in_rows_with_a_caption_and_no_raw_floats():
    stats = eda.token_stats({"human": np.array([5, 50, 7]), "ai": np.array([9, 8, 7]), "example": np.array([10, 20, 40])}, 32)
    frame = eda.stats_frame(stats, {"human": "essay", "ai": "gpt", "example": "training example"})
    assert list(frame.columns) == ["essay", "gpt", "training example"] and "recommended_max_seq_length" in frame.index
    page = eda.table(frame, "Tokens per text").to_html()
    assert "Tokens per text" in page and "<caption" in page
    assert ">33.3%<" in page and ">64<" in page  # share over 32 of the examples; the recommendation
    assert not re.search(r">\d+\.\d{4,}<", page), "no float shown with pandas' six decimals"
    lengths = eda.lengths_frame(eda.length_stats({"human": eda.length_table(["a b", "c"]), "ai": eda.length_table(["d"])}),
                                {"human": "essay", "ai": "gpt"})
    assert list(lengths.columns) == [("chars", "essay"), ("chars", "gpt"), ("words", "essay"), ("words", "gpt")]


def test_style_table_shows_means_and_spreads_per_column_with_shares_in_percent():
    from ai2human.eda.style import STYLE_COLUMNS, style_table

    summary = eda.style_stats({"human": style_table(["I don't know.\nIt's fine."]), "ai": style_table(["Moreover.\n\nIndeed."])})
    frame = eda.style_frame(summary, {"human": "essay", "ai": "gpt"})
    assert list(frame.index) == STYLE_COLUMNS and list(frame.columns) == [("essay", "mean"), ("essay", "std"), ("gpt", "mean"), ("gpt", "std")]
    page = eda.style_stats_table(summary, {"human": "essay", "ai": "gpt"}, "Style: means").to_html()
    assert "Style: means" in page and ">100.0%<" in page  # the ai text has a blank line between paragraphs


def test_token_plot_draws_the_max_seq_length_line():
    tokens = {"human": np.array([1, 5, 9]), "ai": np.array([2, 6, 8]), "example": np.array([10, 20, 40])}
    stats = eda.token_stats(tokens, 32)
    fig = eda.plot_tokens(tokens, stats, {"human": "human", "ai": "LLM"}, 32)
    assert all(any(list(line.get_xdata()) == [32, 32] for line in ax.lines) for ax in fig.axes[:2])


# --- the notebook -----------------------------------------------------------------------------------


def test_the_demo_eda_report_prints_what_it_saves(demo_run):
    """The demo run's executed 01_eda (the suite runs it once, in conftest.demo_run): seven figures,
    a takeaway per section, captioned tables, and the printed numbers are the saved ones."""
    cells = [c for c in json.loads((demo_run / "01_eda.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in cells for o in c["outputs"]]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 7  # paragraphs, lengths, tokens, top words, clouds, log-odds, style
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    tables = "".join("".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {}))
    assert printed.count("Takeaway:") == 6
    assert tables.count("<caption") >= 5 and not re.search(r">\d+\.\d{4,}<", tables)
    summary = eda.read_summary(demo_run)
    max_seq_length = summary["tokens"]["max_seq_length"]
    share = float(re.search(rf"([\d.]+)% of training examples are longer than max_seq_length={max_seq_length}", printed).group(1))
    assert share == pytest.approx(100 * summary["tokens"]["example"]["share_over_max_seq_length"], abs=0.05)
    assert summary["dataset"]["rows_kept"] == 300 and summary["dataset"]["columns"] == {"human": "human", "ai": "LLM"}
    assert f"recommended max_seq_length: {summary['tokens']['example']['recommended_max_seq_length']}" in printed
