"""The pairs stage's library (issue 18): the split rule by original row for every pairs_source, the
pairs file, the styling prompt, and the filters that drop restyled texts by reason."""

from __future__ import annotations

import pandas as pd
import pytest

from ai2human.data.pairs import load_pairs, split_pairs
from ai2human.errors import DataError
from ai2human.pairs import filters, store
from ai2human.pairs.styling import styling_prompt
from ai2human.rundir import PAIRS
from conftest import REPO

INSTRUCTION = "Rewrite this in an assistant's style; keep every fact."


@pytest.fixture(scope="module")
def split():
    pairs, _ = load_pairs(REPO / "data" / "sample.csv", "human", "LLM")
    return split_pairs(pairs, 0.2, 42)


def _restyled(train: pd.DataFrame, n: int) -> pd.DataFrame:
    """Kept restyled texts for the first n training rows (the stage's ``kept`` frame)."""
    return pd.DataFrame({"row": train["row"].iloc[:n].to_numpy(), "ai": [f"Restyled: {h}" for h in train["human"].iloc[:n]]})


@pytest.mark.parametrize("source", store.PAIRS_SOURCES)
def test_no_validation_human_text_is_trained_on_for_any_source(split, source, tmp_path):
    train, val = split
    if source != "dataset":
        store.write_pairs(store.build_pairs(train, _restyled(train, 30), source), tmp_path)
    trained, note = store.training_pairs(tmp_path, source, train, val)
    assert not set(trained["row"]) & set(val["row"])
    assert not set(trained["human"]) & set(val["human"])
    assert set(trained["row"]) == set(train["row"]), "every training row keeps at least one pair"
    assert source in note


def test_a_pairs_file_holding_validation_rows_is_cut_to_the_training_split_and_refused_by_the_evaluation(split, tmp_path):
    train, val = split
    poisoned = pd.concat([store.build_pairs(train, _restyled(train, 5), "reverse"),
                          val.head(3).assign(source="reverse")[store.COLUMNS]], ignore_index=True)
    store.write_pairs(poisoned, tmp_path)
    trained, note = store.training_pairs(tmp_path, "reverse", train, val)
    assert not set(trained["row"]) & set(val["row"]) and "3 pairs left out" in note
    with pytest.raises(DataError, match="3 pairs of the validation split"):
        store.pairs_note(tmp_path, val)


def test_reverse_replaces_kept_rows_and_both_adds_them(split):
    train, _ = split
    kept = _restyled(train, 10)
    reverse = store.build_pairs(train, kept, "reverse")
    both = store.build_pairs(train, kept, "both")
    assert len(reverse) == len(train) and (reverse["source"] == "reverse").sum() == 10
    assert len(both) == len(train) + 10 and (both["source"] == "dataset").sum() == len(train)
    row = int(kept["row"].iloc[0])
    pair = reverse[reverse["row"] == row].iloc[0]
    assert pair["source"] == "reverse" and pair["ai"].startswith("Restyled: ")
    assert pair["human"] == train.set_index("row").loc[row, "human"], "the target stays the row's own human text"
    assert list(both[both["row"] == row]["source"]) == ["dataset", "reverse"]


def test_restyled_rows_outside_the_training_split_are_refused(split):
    train, val = split
    with pytest.raises(DataError, match="not training rows"):
        store.build_pairs(train, pd.DataFrame({"row": val["row"].head(2), "ai": ["x", "y"]}), "both")


def test_the_pairs_file_round_trips_and_bad_files_say_what_to_do(split, tmp_path):
    train, _ = split
    written = store.build_pairs(train, _restyled(train, 4), "both")
    store.write_pairs(written, tmp_path)
    assert store.read_pairs(tmp_path).equals(written)
    assert not list(tmp_path.glob("*.tmp")), "written through a temporary file and renamed"
    with pytest.raises(DataError, match="run the pairs notebook"):
        store.read_pairs(tmp_path / "nowhere")
    (tmp_path / PAIRS).write_bytes(b"PAR1 cut off")
    with pytest.raises(DataError, match="unreadable"):
        store.read_pairs(tmp_path)
    written.drop(columns="source").to_parquet(tmp_path / PAIRS)
    with pytest.raises(DataError, match="source"):
        store.read_pairs(tmp_path)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from ai2human.models.loading import load_tokenizer

    return load_tokenizer("local:tiny-qwen2")


def test_the_styling_prompt_uses_the_chat_template_or_says_alpaca(tiny_tokenizer):
    alpaca = styling_prompt(tiny_tokenizer, "My text.", INSTRUCTION)
    assert "### Instruction:\n" + INSTRUCTION in alpaca and alpaca.endswith("### Response:\n")
    tiny_tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                                    "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    try:
        chat = styling_prompt(tiny_tokenizer, "My text.", INSTRUCTION)
    finally:
        tiny_tokenizer.chat_template = None
    assert chat.startswith("<|system|>") and f"<|user|>{INSTRUCTION}\n\nMy text." in chat and chat.endswith("<|assistant|>")
    assert "### Instruction" not in chat


@pytest.fixture(scope="module")
def yardstick(split):
    from ai2human.evaluate.meaning import load_embedder
    from ai2human.evaluate.yardstick import build_yardstick

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        train, val = split
        embedder = load_embedder(device="cpu")
        yield build_yardstick(train, val, embedder, seed=0), embedder
    finally:
        mp.undo()


def test_the_filters_drop_each_bad_restyling_for_its_reason(split, yardstick):
    train, _ = split
    ys, embedder = yardstick
    human = train["human"].tolist()[:6]
    restyled = [
        human[0],                                         # a person's text unchanged: did not take on the AI style
        "zq xv blorf " * 30,                              # gibberish
        human[2] + " It happened in 1987 in Paris, said Gandalf.",  # invents a year, a place and a name
        train["human"].iloc[50],                          # another row's text
        "",                                               # nothing
        "short",                                          # not styled: stands in for an over-long prompt
    ]
    judged = filters.judge_styled(ys, embedder, human, restyled, [False, True, False, False, False, False],
                                  fits=[True, True, True, True, True, False])
    assert not judged["kept"].any()
    assert judged.loc[0, "drop_reason"] == filters.REASONS["not_ai"]
    assert judged.loc[1, "not_fluent"] and judged.loc[1, "meaning_lost"] and judged.loc[1, "cut_off"]
    assert judged.loc[2, "invents"] and not judged.loc[2, "not_fluent"]
    assert judged.loc[3, "meaning_lost"]
    assert judged.loc[4, "empty"]
    assert judged.loc[5, "drop_reason"] == filters.REASONS["not_styled"]
    table = filters.drop_table(judged)
    assert table.loc["kept", "texts"] == 0 and table.loc["dropped", "texts"] == 6
    assert table.loc[f"dropped: {filters.REASONS['not_fluent']}", "texts"] >= 1
    first = filters.first_reasons(judged)
    assert sum(first.values()) == 6 and first[filters.REASONS["not_fluent"]] >= 1, "gibberish is explained as such, not as cut off"


class _Verdicts:
    """A yardstick that returns set verdicts: what ``judge_styled`` makes of each combination."""

    voting = ["tfidf"]

    def __init__(self, frame):
        self.frame = frame

    def score(self, embedder, sources, outputs, truncated):
        return self.frame.iloc[: len(outputs)].reset_index(drop=True)


def test_a_restyled_text_is_kept_only_when_every_check_passes():
    ok = {"p_human_tfidf": 0.1, "not_empty": True, "not_truncated": True, "fluent": True, "meaning_kept": True,
          "invents_nothing": True, "similarity": 0.8}
    rows = [ok, ok | {"p_human_tfidf": 0.6}, ok | {"meaning_kept": False}, ok | {"invents_nothing": False},
            ok | {"fluent": False}, ok | {"not_truncated": False}]
    judged = filters.judge_styled(_Verdicts(pd.DataFrame(rows)), None, ["h"] * 6, ["s"] * 6, [False] * 6)
    assert judged["kept"].tolist() == [True, False, False, False, False, False]
    assert judged["drop_reason"].tolist()[1:] == [filters.REASONS[r] for r in ("not_ai", "meaning_lost", "invents", "not_fluent", "cut_off")]


def test_only_restyled_texts_that_passed_become_pairs(split):
    train, _ = split
    rows = train.head(3)
    judged = pd.DataFrame({"kept": [False, True, False]})
    kept = store.kept_restyled(rows, ["a", "b", "c"], judged)
    assert kept.to_dict("list") == {"row": [int(rows["row"].iloc[1])], "ai": ["b"]}


def _run_with_adapter(root, name, split_record=None):
    import json

    adapter = root / name / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    if split_record is not None:
        (root / name / "split.json").write_text(json.dumps(split_record))
    return adapter


def test_compared_adapters_are_named_by_run_and_must_share_the_split(split, tmp_path):
    from ai2human.data.pairs import split_record
    from ai2human.pairs.compare import check_same_split, parse_compare_adapters

    train, val = split
    same = _run_with_adapter(tmp_path, "v5", split_record(train, val))
    other = _run_with_adapter(tmp_path, "other-split", split_record(*split_pairs(pd.concat([train, val]), 0.2, 7)))
    found = parse_compare_adapters(" v5, other-split/adapter ,", tmp_path / "v5-reverse")
    assert found == {"finetuned@v5": same.resolve(), "finetuned@other-split": other.resolve()}
    assert "same split" in check_same_split(same, train, val)
    with pytest.raises(DataError, match="another split"):
        check_same_split(other, train, val)
    with pytest.raises(DataError, match="holds no adapter"):
        parse_compare_adapters("nowhere", tmp_path / "v5-reverse")
    assert parse_compare_adapters("", tmp_path / "v5-reverse") == {}
