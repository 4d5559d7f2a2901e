"""Invented details: numbers, dates, names and quotations a rewrite adds to its input."""

from ai2human.evaluate.entities import added_entities, added_quotes

SOURCE = "Moreover, Priya visited Lisbon in March 2019 with three friends. The trip cost 1,200 euros."
NOTHING = {"numbers": [], "dates": [], "names": [], "quotes": []}


def test_reworded_sentence_is_not_flagged():
    output = "Honestly? Priya went to Lisbon with 3 friends back in March 2019, and the trip cost 1200 euros."
    assert added_entities(SOURCE, output) == NOTHING


def test_sentence_initial_common_words_are_not_names():
    output = "The trip was fun. However, it cost a lot. Looking back, Priya says it was worth it. Moreover, Lisbon is lovely."
    assert added_entities(SOURCE, output)["names"] == []


def test_added_number_is_caught():
    added = added_entities(SOURCE, "Priya visited Lisbon in March 2019 with three friends and spent 450 euros on food.")
    assert added["numbers"] == ["450"] and added["names"] == [] and added["dates"] == []


def test_added_name_is_caught_mid_sentence_and_at_sentence_start():
    output = "Priya visited Lisbon with her brother Marcus. Oliver stayed home in New York with Dr. Okafor."
    assert added_entities(SOURCE, output)["names"] == ["Marcus", "Oliver", "New York", "Dr Okafor"]


def test_added_dates_are_caught_and_reordered_dates_are_not():
    output = "On Monday, 12 May 2021, Priya visited Lisbon, as she had in 2019 (March)."
    assert added_entities(SOURCE, output)["dates"] == ["Monday", "12 May 2021"]
    assert added_entities("It happened on May 3, 2020.", "It happened on 3 May 2020.")["dates"] == []


def test_pronoun_i_and_title_case_headings_are_not_names():
    source = "## The Future Of Work\n\nAI is changing jobs, I think."
    output = "# The future of work\n\nI'm sure AI is changing jobs. I'd say so."
    assert added_entities(source, output) == NOTHING


def test_invented_quotation_is_caught_and_a_kept_one_is_not():
    source = 'The coach said "we play for each other" after the match.'
    kept = 'After the match the coach told us: “We play for each other.”'
    assert added_quotes(source, kept) == []
    invented = 'The coach said "we play for each other" and the captain added "nobody can stop us now".'
    assert added_quotes(source, invented) == ["nobody can stop us now"]
    assert added_quotes(source, 'It was a "good" match.') == []  # a scare quote is wording, not a claim
    assert added_entities(source, invented)["quotes"] == ["nobody can stop us now"]
