"""Style statistics on crafted texts whose values can be counted by hand."""

from __future__ import annotations

import math

import pytest

from ai2human.eda.style import LLM_WORDS, STYLE_COLUMNS, is_contraction, sentences, style_features, style_table, syllables


def test_contractions_count_but_possessives_do_not():
    # It's, isn't, I'd, we'll are contractions; John's is a possessive. 9 words in all.
    f = style_features("It's John's book, isn't it? I'd say we'll go.")
    assert f["contractions_per_100w"] == pytest.approx(400 / 9)


@pytest.mark.parametrize("word", ["don't", "I'm", "they're", "we've", "she'll", "he'd", "that's", "let's", "It’s"])
def test_contraction_forms(word):
    assert is_contraction(word.replace("\u2019", "'"))


def test_curly_apostrophes_count_like_straight_ones():
    assert style_features("I don’t know.")["contractions_per_100w"] == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First paragraph.\n\nSecond paragraph.", 1.0),
        ("First paragraph.\n   \nSecond, after a whitespace-only line.", 1.0),
        ("First paragraph.\nSecond paragraph.", 0.0),
        ("Only one paragraph.\n\n", 0.0),
        ("\n\nOnly one paragraph.", 0.0),
    ],
)
def test_blank_line_between_paragraphs(text, expected):
    assert style_features(text)["blank_line_paragraphs"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("## Introduction\nSome text.", 1.0),
        ("Some **bold** claim.", 1.0),
        ("Points:\n- one\n- two", 1.0),
        ("Steps:\n1. mix\n2. bake", 1.0),
        ("Plain text with #hashtag and 2 * 3 * 4 = 24.", 0.0),
        ("A dash - in the middle of a line.", 0.0),
    ],
)
def test_markdown_detection(text, expected):
    assert style_features(text)["markdown"] == expected


def test_paragraphs_are_non_empty_lines():
    assert style_features("One.\n\nTwo.\nThree.\n\n\n")["paragraphs"] == 3


def test_sentence_length_mean_and_spread():
    # sentences of 3, 1 and 2 words: mean 2, population std sqrt(2/3)
    f = style_features("One two three. One. One two!")
    assert f["sentence_len_mean"] == pytest.approx(2.0)
    assert f["sentence_len_std"] == pytest.approx(math.sqrt(2 / 3))


def test_headings_and_markup_are_not_sentences():
    assert sentences("## The Intro\nOne two **three** four.\n- five six") == [["One", "two", "three", "four"], ["five", "six"]]


def test_type_token_ratio_ignores_case():
    assert style_features("The cat saw the dog.")["type_token_ratio"] == pytest.approx(4 / 5)


def test_llm_words_match_their_inflections():
    # delve, vibrant, tapestry, fosters: 4 of 9 words
    f = style_features("We delve into a vibrant tapestry. It fosters growth.")
    assert f["llm_words_per_100w"] == pytest.approx(400 / 9)
    assert style_features("The dog ran home.")["llm_words_per_100w"] == 0.0


def test_llm_word_list_has_the_stock_words():
    assert {"delve", "tapestry", "crucial", "furthermore", "moreover", "multifaceted", "vibrant", "testament",
            "realm", "navigate", "foster", "underscore", "pivotal"} <= set(LLM_WORDS)


def test_readability_is_flesch_reading_ease():
    # 3 one-syllable words in 1 sentence: 206.835 - 1.015 * 3 - 84.6 * 1
    assert syllables("cat") == 1
    assert style_features("The cat sat.")["readability"] == pytest.approx(206.835 - 1.015 * 3 - 84.6)


def test_long_words_read_harder_than_short_ones():
    easy = style_features("The dog ran. The cat sat. We had fun.")["readability"]
    hard = style_features("Multifaceted considerations necessitate comprehensive institutional deliberation.")["readability"]
    assert easy > 90 > 0 > hard


def test_empty_text_scores_zero_without_errors():
    assert style_features("") == {c: 0.0 for c in STYLE_COLUMNS}
    assert style_features("   \n\n ")["readability"] == 0.0


def test_style_table_has_one_row_per_text_in_order():
    table = style_table(["It's fine.", "Moreover, it is crucial.\n\nIndeed."])
    assert list(table.columns) == STYLE_COLUMNS
    assert len(table) == 2 and all(str(t) == "float64" for t in table.dtypes)
    assert table.loc[0, "contractions_per_100w"] > 0 and table.loc[1, "blank_line_paragraphs"] == 1.0
